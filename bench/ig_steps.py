"""How many integrated-gradients steps the folder's weights need: the app's explanation at each step count against
a reference with many more steps, on test reviews of middle length, and the time each takes.

    python bench/ig_steps.py [--artifacts artifacts] [--data ../shared/data/imdb] [--reviews 24]
                             [--steps 8 10 12 16 20] [--reference 64]

The reviews are drawn (seed 0) from the middle half of token lengths among 2,000 sampled test reviews. For each
step count it prints JSON: relative convergence delta (what the app shows), Pearson correlation of the per-word
attributions with the reference's, the share of the words in the reference's top-words table (the app's: eight
toward positive and eight toward negative, `Explanation.top_words`) that its own table lists too, and the L1
distance of the attributions over the reference's L1 norm, as median, mean, min and max over the reviews, and
the median seconds of one explanation. The quadrature error depends on the weights (docs/performance.md), so rerun
this when the shipped model changes before changing `DEFAULT_IG_STEPS`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sentiment import runtime  # noqa: E402
from sentiment.explain import Explainer  # noqa: E402
from sentiment.predict import Predictor  # noqa: E402


def summary(values: list[float]) -> dict:
    return {"median": float(np.median(values)), "mean": float(np.mean(values)), "min": float(np.min(values)),
            "max": float(np.max(values))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"))
    parser.add_argument("--reviews", type=int, default=24)
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 10, 12, 16, 20])
    parser.add_argument("--reference", type=int, default=64, help="steps of the reference explanation")
    args = parser.parse_args()
    runtime.set_threads(None)
    predictor = Predictor.from_artifacts(args.artifacts)
    explainer = Explainer(predictor)
    texts = pd.read_parquet(Path(args.data) / "test.parquet", columns=["text"])["text"]
    texts = texts.sample(2000, random_state=0).tolist()
    order = np.argsort([len(ids) for ids in predictor.encoder.encode(texts)])
    middle = order[len(order) // 4: 3 * len(order) // 4]
    picked = [texts[i] for i in np.random.default_rng(0).choice(middle, args.reviews, replace=False)]
    rows: dict[int, dict[str, list[float]]] = {steps: {} for steps in args.steps}
    def listed(explanation) -> set[tuple[str, str]]:
        toward_positive, toward_negative = explanation.top_words(8)
        return {("positive", w) for w, _ in toward_positive} | {("negative", w) for w, _ in toward_negative}

    for text in picked:
        best = explainer.explain(text, n_steps=args.reference)
        reference, table = np.array([score for _, score in best.words]), listed(best)
        for steps in args.steps:
            start = time.perf_counter()
            explanation = explainer.explain(text, n_steps=steps)
            seconds = time.perf_counter() - start
            scores = np.array([score for _, score in explanation.words])
            found = {"seconds": seconds, "relative_delta": explanation.relative_delta,
                     "pearson": float(np.corrcoef(scores, reference)[0, 1]),
                     "top_words_shared": len(listed(explanation) & table) / max(1, len(table)),
                     "l1_relative_error": float(np.abs(scores - reference).sum() / np.abs(reference).sum())}
            for key, value in found.items():
                rows[steps].setdefault(key, []).append(value)
    result = {"machine": runtime.describe(predictor.device, predictor.precision), "attention": explainer.attention,
              "reviews": len(picked), "reference_steps": args.reference,
              "median_tokens": float(np.median([len(ids) for ids in predictor.encoder.encode(picked)])),
              "steps": {str(steps): {"p50_s": float(np.median(found.pop("seconds"))),
                                     **{key: summary(values) for key, values in found.items()}}
                        for steps, found in rows.items()}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
