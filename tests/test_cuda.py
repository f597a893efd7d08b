"""The CUDA code paths, run where a GPU is visible (CI has none; docs/performance.md says where they last ran):
training in each precision, the stored evaluation against the same weights served on the CPU, resume after a
crash, and explanations on the GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import train
from sentiment.artifacts import read_json, verify_manifest
from sentiment.data import review_key
from sentiment.predict import Predictor

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

FLAGS = ["--batch-size", "8", "--max-length", "128", "--validation-split", "0.25", "--learning-rate", "1e-3",
         "--epochs", "2", "--save-dtype", "fp32", "--device", "cuda", "--no-progress"]
RESUMABLE = ["--precision", "fp32", "--batch-size", "4", "--checkpoint-minutes", "0"]
# How far the GPU's stored test probabilities may lie from the CPU's fp32 answers for the same weights: the GPU
# serves bf16 and fp16 runs in that precision.
CPU_TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 5e-2}


def run(data: Path, model: Path, folder: Path, *extra: str) -> Path:
    argv = ["--data", str(data), "--model", str(model), "--output-dir", str(folder / "artifacts"),
            "--checkpoint-dir", str(folder / "checkpoints"), *FLAGS, *extra]
    assert train.main(argv) == 0
    return folder / "artifacts"


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_training_on_the_gpu_in_each_precision(precision, small_imdb, tiny_model_dir, review_tables, tmp_path):
    artifacts = run(small_imdb, tiny_model_dir, tmp_path, "--precision", precision)
    verify_manifest(artifacts)
    runtime = read_json(artifacts / "training_config.json")["runtime"]
    assert runtime["device"].startswith("cuda") and runtime["precision"] == precision and runtime["gpu"]
    history = read_json(artifacts / "history.json")["epochs"]
    assert len(history) == 2 and all(np.isfinite([r["train_loss"], r["eval_loss"]]).all() for r in history)
    weights, initial = load_file(artifacts / "model.safetensors"), load_file(tiny_model_dir / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())  # fp16's loss scaling kept them finite
    assert not torch.equal(weights["classifier.weight"], initial["classifier.weight"])

    stored = pd.read_parquet(artifacts / "evaluations" / "test" / "predictions.parquet")
    texts = {review_key(t): t for t in review_tables[1]["text"]}
    ordered = [texts[key] for key in stored["key"]]
    gpu = Predictor.from_artifacts(artifacts, device="cuda", precision=precision).predict_proba(ordered)[:, 1]
    np.testing.assert_allclose(gpu, stored["prob_positive"], atol=1e-4)
    cpu = Predictor.from_artifacts(artifacts, device="cpu", precision="fp32").predict_proba(ordered)[:, 1]
    np.testing.assert_allclose(cpu, stored["prob_positive"], atol=CPU_TOLERANCE[precision])


@pytest.fixture(scope="module")
def uninterrupted(small_imdb: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(small_imdb, tiny_model_dir, tmp_path_factory.mktemp("uninterrupted"), *RESUMABLE)


def test_resume_on_the_gpu_matches_an_uninterrupted_run(small_imdb, tiny_model_dir, uninterrupted, tmp_path,
                                                        crash_mid_second_epoch):
    with crash_mid_second_epoch():
        run(small_imdb, tiny_model_dir, tmp_path, *RESUMABLE)
    resumed = run(small_imdb, tiny_model_dir, tmp_path, *RESUMABLE, "--resume")
    ours, theirs = load_file(resumed / "model.safetensors"), load_file(uninterrupted / "model.safetensors")
    # The GPU's backward sums in no fixed order; attention key biases, whose gradient is only that rounding noise
    # (Adam scales it to full steps), are left out, as in tests/test_distributed.py.
    for name in theirs:
        if not name.endswith("attention.self.key.bias"):
            torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-5, msg=name)
    history = [read_json(folder / "history.json") for folder in (resumed, uninterrupted)]
    assert [r["eval_accuracy"] for r in history[0]["epochs"]] == [r["eval_accuracy"] for r in history[1]["epochs"]]


def test_explanations_on_the_gpu_match_the_cpu_and_add_up(uninterrupted, review_tables):
    from sentiment.explain import Explainer

    text = review_tables[1]["text"][0]
    gpu, cpu = (Explainer(Predictor.from_artifacts(uninterrupted, device=device, precision="fp32"), n_steps=16)
                .explain(text) for device in ("cuda", "cpu"))
    assert [word for word, _ in gpu.words] == [word for word, _ in cpu.words]
    np.testing.assert_allclose([s for _, s in gpu.words], [s for _, s in cpu.words], rtol=1e-3, atol=1e-5)
    served = Explainer(Predictor.from_artifacts(uninterrupted, device="cuda"), n_steps=16).explain(text)  # bf16
    for explanation, rounding in ((gpu, 1e-4), (served, 1e-2)):
        total = sum(score for _, score in explanation.words)
        magnitude = sum(abs(score) for _, score in explanation.words)
        assert abs(total - explanation.margin_change) <= abs(explanation.delta) + rounding * magnitude + 1e-6
