"""Latency of the app's two requests on this machine: prediction of a short review, and IG of a median one.

    python bench/app_latency.py [--artifacts artifacts] [--data ../shared/data/imdb] [--repeats 20]

Prints JSON: p50/p95 seconds for predict (short review) and explain (a test review of median token length),
IG's relative convergence delta, and the same numbers for the baseline a user would otherwise run
(`transformers.pipeline` for prediction; Captum with its defaults, 50 steps, fp32, on the model's default SDPA
attention, for IG), and for our IG on the SDPA kernel instead of the plain attention it uses.
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
from sentiment.config import DEFAULT_IG_STEPS  # noqa: E402
from sentiment.explain import Explainer  # noqa: E402
from sentiment.predict import Predictor  # noqa: E402

SHORT = "A warm, funny film with a wonderful cast; I would happily watch it again."


def timed(fn, repeats: int) -> dict:
    fn()  # the first call pays for kernel set-up of its shapes
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return {"p50_s": statistics.median(seconds), "p95_s": float(np.percentile(seconds, 95)), "repeats": repeats}


def median_review(data: Path, predictor: Predictor) -> str:
    texts = pd.read_parquet(data / "test.parquet", columns=["text"])["text"].sample(2000, random_state=0).tolist()
    lengths = np.array([len(ids) for ids in predictor.encoder.encode(texts)])
    return texts[int(np.argsort(lengths)[len(lengths) // 2])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--ig-steps", type=int, default=DEFAULT_IG_STEPS)
    args = parser.parse_args()
    runtime.set_threads(None)
    from transformers import pipeline

    predictor = Predictor.from_artifacts(args.artifacts)
    explainer = Explainer(predictor, n_steps=args.ig_steps)
    review = median_review(Path(args.data), predictor)
    n_tokens = len(predictor.encoder.encode([review])[0])
    baseline_predictor = Predictor.from_artifacts(args.artifacts, precision="fp32", verify=False)
    # What a user's Captum code would run: the model's default SDPA attention.
    baseline_explainer = Explainer(baseline_predictor, n_steps=50, attention="sdpa")
    fused_explainer = Explainer(predictor, n_steps=args.ig_steps, attention="sdpa")
    pipe = pipeline("text-classification", model=args.artifacts, truncation=True, device="cpu")
    ours_explain = explainer.explain(review)
    fused = {**timed(lambda: fused_explainer.explain(review), max(3, args.repeats // 4)), "steps": args.ig_steps,
             "attention": "sdpa", "relative_delta": fused_explainer.explain(review).relative_delta}
    baseline = {**timed(lambda: baseline_explainer.explain(review), 3), "steps": 50, "attention": "sdpa",
                "relative_delta": baseline_explainer.explain(review).relative_delta}
    result = {
        "machine": runtime.describe(predictor.device, predictor.precision),
        "predict_short": {"ours": timed(lambda: predictor.predict(SHORT), args.repeats),
                          "pipeline": timed(lambda: pipe(SHORT), args.repeats)},
        "explain_median": {"tokens": n_tokens,
                           "ours": {**timed(lambda: explainer.explain(review), max(3, args.repeats // 4)),
                                    "steps": args.ig_steps, "attention": explainer.attention,
                                    "relative_delta": ours_explain.relative_delta},
                           "ours_on_the_fused_attention_kernel": fused,
                           "captum_defaults_fp32": baseline},
    }
    for block in ("predict_short",):
        result[block]["speedup"] = result[block]["pipeline"]["p50_s"] / result[block]["ours"]["p50_s"]
    result["explain_median"]["speedup"] = (result["explain_median"]["captum_defaults_fp32"]["p50_s"]
                                           / result["explain_median"]["ours"]["p50_s"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
