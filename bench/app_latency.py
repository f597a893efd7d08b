"""Latency of the app's two requests on this machine: prediction of a short review, and IG of a median one.

    python bench/app_latency.py [--artifacts artifacts] [--data ../shared/data/imdb] [--repeats 20]

Prints JSON: p50/p95 seconds for predict (short review) and explain (a test review of median token length),
IG's relative convergence delta, and the same numbers for the baseline a user would otherwise run
(`transformers.pipeline` for prediction; for IG, Captum's LayerIntegratedGradients with its defaults, 50 steps in
one batch, on the plain model in fp32 with its default SDPA attention, the same baseline and logit margin as ours),
and for our IG on the SDPA kernel instead of the kernel it chose.
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


def captum_defaults(model, tokenizer, review: str) -> dict:
    """Integrated gradients as a user's own Captum code computes them: the whole model, Captum's defaults."""
    import torch
    from captum.attr import LayerIntegratedGradients

    input_ids = tokenizer(review, truncation=True, return_tensors="pt")["input_ids"]
    baseline = torch.full_like(input_ids, tokenizer.pad_token_id)
    baseline[0, 0], baseline[0, -1] = input_ids[0, 0], input_ids[0, -1]

    def margin(ids):
        logits = model(input_ids=ids).logits
        return logits[:, 1] - logits[:, 0]

    ig = LayerIntegratedGradients(margin, model.get_input_embeddings())

    def explain():
        return ig.attribute(input_ids, baselines=baseline, return_convergence_delta=True)

    _, delta = explain()
    with torch.inference_mode():
        change = float(margin(input_ids)[0] - margin(baseline)[0])
    return {**timed(explain, 3), "steps": 50, "attention": model.config._attn_implementation,
            "relative_delta": abs(float(delta[0])) / max(abs(change), 1e-6)}


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
    baseline_model = Predictor.from_artifacts(args.artifacts, precision="fp32", verify=False).model
    baseline_model.set_attn_implementation("sdpa")  # what a user's own load gets: the model's default kernel
    fused_explainer = Explainer(predictor, n_steps=args.ig_steps, attention="sdpa")
    pipe = pipeline("text-classification", model=args.artifacts, truncation=True, device="cpu")
    ours_explain = explainer.explain(review)
    fused = {**timed(lambda: fused_explainer.explain(review), max(3, args.repeats // 4)), "steps": args.ig_steps,
             "attention": "sdpa", "relative_delta": fused_explainer.explain(review).relative_delta}
    baseline = captum_defaults(baseline_model, predictor.encoder.tokenizer, review)
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
