"""Inference throughput: our Predictor against transformers.pipeline on the same test reviews, one process.

    python bench/inference_throughput.py [--artifacts artifacts] [--data ../shared/data/imdb] [--reviews 1000]

Prints JSON: reviews/s of each and the ratio on `--reviews` IMDB test reviews (head+tail truncation for ours,
the pipeline's own truncation for it), agreement of their labels, and p50/p95 latency of one short review.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sentiment import runtime  # noqa: E402
from sentiment.predict import Predictor  # noqa: E402

SHORT = "A warm, funny film with a wonderful cast; I would happily watch it again."


def latency(fn, repeats: int = 30) -> dict:
    fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return {"p50_s": statistics.median(seconds), "p95_s": float(np.percentile(seconds, 95))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"))
    parser.add_argument("--reviews", type=int, default=1000)
    args = parser.parse_args()
    runtime.set_threads(None)
    from transformers import pipeline

    texts = pd.read_parquet(Path(args.data) / "test.parquet", columns=["text"])["text"]
    texts = texts.sample(args.reviews, random_state=0).tolist()
    predictor = Predictor.from_artifacts(args.artifacts)
    pipe = pipeline("text-classification", model=args.artifacts, device="cpu")
    predictor.predict(texts[:8])
    start = time.perf_counter()
    ours = predictor.predict(texts)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = pipe(texts, truncation=True, max_length=512, batch_size=16)
    pipe_s = time.perf_counter() - start
    agreement = float(np.mean([o["label"] == t["label"] for o, t in zip(ours, theirs, strict=True)]))
    result = {"machine": runtime.describe(predictor.device, predictor.precision), "reviews": len(texts),
              "ours": {"seconds": ours_s, "reviews_per_s": len(texts) / ours_s},
              "pipeline": {"seconds": pipe_s, "reviews_per_s": len(texts) / pipe_s, "batch_size": 16,
                           "dtype": str(pipe.model.dtype)},
              "speedup": pipe_s / ours_s, "label_agreement": agreement,
              "short_review_latency": {"ours": latency(lambda: predictor.predict(SHORT)),
                                       "pipeline": latency(lambda: pipe(SHORT))}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
