"""End to end: train.py on the fixture's 64 reviews with a tiny BERT, then load, serve, resume and fail cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open

import train
from sentiment import checkpoint
from sentiment.artifacts import verify_manifest
from sentiment.consistency import identity_pairs
from sentiment.data import review_key
from sentiment.errors import SentimentError
from sentiment.predict import Predictor

REPO = Path(__file__).resolve().parents[1]
# Small and deterministic: 36 train / 12 validation / 16 test reviews, 128 tokens, one thread, fp32 compute.
BASE = ["--batch-size", "8", "--max-length", "128", "--validation-split", "0.25", "--learning-rate", "1e-3",
        "--precision", "fp32", "--device", "cpu", "--num-threads", "1", "--no-progress", "--no-int8"]
# Resume runs checkpoint after every step; fp32 weights so that equality is exact; the identity-consistency pairs
# too, so that a resumed run must also draw the same pairs.
RESUMABLE = ["--epochs", "2", "--batch-size", "4", "--checkpoint-minutes", "0", "--save-dtype", "fp32",
             "--identity-consistency", "1"]
TIME_KEYS = ("train_seconds", "train_tokens_per_second")


def argv(data: Path, model: Path, folder: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--model", str(model), "--output-dir", str(folder / "artifacts"),
            "--checkpoint-dir", str(folder / "checkpoints"), *BASE, *extra]


@pytest.fixture(scope="module")
def trained(small_imdb: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The artifacts of one short run: two epochs cut short by --max-steps 7 (5 steps per epoch)."""
    folder = tmp_path_factory.mktemp("trained")
    assert train.main(argv(small_imdb, tiny_model_dir, folder, "--epochs", "2", "--max-steps", "7")) == 0
    return folder / "artifacts"


@pytest.fixture(scope="module")
def test_texts(review_tables) -> list[str]:
    return review_tables[1]["text"].tolist()


# --- what a run writes -----------------------------------------------------------------------------------------


def test_artifacts_folder_is_complete_and_verified(trained):
    names = {p.relative_to(trained).as_posix() for p in trained.rglob("*") if p.is_file()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training_config.json",
            "history.json", "calibration.json", "fairness.json", "evaluations/test/evaluation.json",
            "evaluations/test/metrics.json", "evaluations/test/predictions.parquet", "manifest.json"} <= names
    manifest = verify_manifest(trained)
    assert set(manifest["files"]) == names - {"manifest.json"}
    hidden = [p.name for p in trained.parent.iterdir() if p.name.startswith(".")]
    assert hidden == [f".{trained.name}.lock"]  # no temporary or old folders; the writers' lock stays


def test_history_has_one_record_per_epoch_and_stops_at_max_steps(trained):
    history = json.loads((trained / "history.json").read_text())
    assert [r["epoch"] for r in history["epochs"]] == [1, 2]
    assert [r["step"] for r in history["epochs"]] == [5, 7]
    for record in history["epochs"]:
        assert 0.0 <= record["train_accuracy"] <= 1.0 and 0.0 <= record["eval_accuracy"] <= 1.0
        assert record["train_loss"] > 0 and record["eval_loss"] > 0
    best = max(history["epochs"], key=lambda r: r["eval_accuracy"])  # the first of equals wins
    assert history["best_epoch"] == best["epoch"]


def test_training_config_records_the_resolved_settings(trained, tiny_model_dir, small_imdb):
    resolved = json.loads((trained / "training_config.json").read_text())
    config = resolved["config"]
    assert (config["data"], config["model"], config["max_length"], config["max_steps"]) == \
        (str(small_imdb), str(tiny_model_dir), 128, 7)
    assert resolved["base_model"] == str(tiny_model_dir)
    assert resolved["sizes"] == {"train": 36, "validation": 12, "test": 16}
    assert config["validation_grouping"] == "random"  # asked for by movie (the default), but the data has no ids
    assert resolved["runtime"]["precision"] == "fp32"


def test_saved_model_has_named_labels_and_the_save_dtype(trained):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(trained)
    assert config.id2label == {0: "negative", 1: "positive"}
    assert config.label2id == {"negative": 0, "positive": 1}
    # Stored in half the bytes, loaded in fp32 by a plain from_pretrained/pipeline: fp16 matmuls crawl on CPUs.
    assert json.loads((trained / "config.json").read_text())["dtype"] == "float32"
    assert AutoModelForSequenceClassification.from_pretrained(trained).dtype == torch.float32
    with safe_open(trained / "model.safetensors", framework="pt") as weights:
        dtypes = {weights.get_slice(name).get_dtype() for name in weights.keys()}
    assert dtypes == {"F16"}  # --save-dtype defaults to fp16


def test_predictions_are_keyed_and_hold_no_text(trained, test_texts, tokenizer):
    predictions = pd.read_parquet(trained / "evaluations" / "test" / "predictions.parquet")
    assert list(predictions.columns) == ["row", "key", "labels", "prob_positive", "predicted", "n_tokens", "truncated",
                                         "marker: negation", "marker: contrast", "marker: could have been",
                                         "marker: scare quotes"]
    assert all(re.fullmatch(r"[0-9a-f]{16}", key) for key in predictions["key"])
    assert set(predictions["key"]) == {review_key(t) for t in test_texts}
    assert ((predictions["prob_positive"] >= 0.5) == (predictions["predicted"] == 1)).all()
    by_key = predictions.set_index("key")
    for text in test_texts:
        n_tokens = len(tokenizer(text)["input_ids"])
        assert by_key.loc[review_key(text), "n_tokens"] == n_tokens
        assert by_key.loc[review_key(text), "truncated"] == (n_tokens > 128)
    assert by_key["truncated"].any() and not by_key["truncated"].all()  # the sample exercises both cases


def test_no_review_text_anywhere_in_the_artifacts(trained, reviews):
    snippets = [text[:60].encode("utf-8") for text in reviews["text"]]
    for path in (p for p in trained.rglob("*") if p.is_file()):
        # Parquet compresses and dictionary-encodes strings, so its raw bytes would hide most of them.
        payload = pd.read_parquet(path).to_csv().encode() if path.suffix == ".parquet" else path.read_bytes()
        leaked = [s for s in snippets if s in payload]
        assert not leaked, f"{path.name} contains review text: {leaked[0][:40]!r}"


def test_metrics_cover_the_test_split(trained):
    metrics = json.loads((trained / "evaluations" / "test" / "metrics.json").read_text())
    assert metrics["n"] == 16
    low, high = metrics["accuracy_ci"]
    assert low <= metrics["accuracy"] <= high
    assert sum(map(sum, metrics["confusion_matrix"])) == 16
    assert metrics["per_class"]["negative"]["support"] == metrics["per_class"]["positive"]["support"] == 8


# --- serving the result ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictor(trained) -> Predictor:
    return Predictor.from_artifacts(trained, device="cpu", precision="fp32")


def test_predict_takes_a_string_or_a_list(predictor, test_texts):
    one = predictor.predict(test_texts[0])
    assert isinstance(one, dict) and one["label"] in ("negative", "positive")
    assert sum(one["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    many = predictor.predict(test_texts[:3])
    assert isinstance(many, list) and len(many) == 3
    assert many[0]["probabilities"] == pytest.approx(one["probabilities"], abs=1e-6)
    for result in many:
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
        assert result["label"] == max(result["probabilities"], key=result["probabilities"].get)


def test_reloaded_model_reproduces_the_stored_test_predictions(predictor, trained, test_texts):
    stored = pd.read_parquet(trained / "evaluations" / "test" / "predictions.parquet").set_index("key")["prob_positive"]
    expected = stored.loc[[review_key(t) for t in test_texts]].to_numpy()
    assert np.ptp(expected) > 1e-2  # reviews get distinguishable predictions, so a mix-up would show
    # Training evaluated the fp16-rounded weights in fp32, as they are reloaded; only batching order may differ.
    np.testing.assert_allclose(predictor.predict_proba(test_texts)[:, 1], expected, rtol=0, atol=1e-5)


def test_transformers_pipeline_loads_the_folder(trained, predictor):
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(trained), device="cpu")
    text = "A quiet, beautifully acted film; I would watch it again."
    scores = {r["label"]: r["score"] for r in classify(text, top_k=None)}
    assert set(scores) == {"negative", "positive"}
    # Both compute in fp32 from the same weights, temperature included: the same calibrated probabilities.
    assert scores == pytest.approx(predictor.predict(text)["probabilities"], abs=1e-5)


def test_dropout_flags_reach_the_model(tiny_model_dir):
    from sentiment.modeling import load_base_classifier

    model = load_base_classifier(str(tiny_model_dir), attention_dropout=0.05, hidden_dropout=0.0)
    assert model.config.hidden_dropout_prob == 0.0
    assert model.config.attention_probs_dropout_prob == 0.05
    assert load_base_classifier(str(tiny_model_dir)).config.hidden_dropout_prob == 0.1


def test_a_softer_target_for_negated_negatives_changes_only_what_training_asks_of_them(small_imdb, tiny_model_dir,
                                                                                         tmp_path):
    quick = ("--targeted-augmentation", "100", "--epochs", "1", "--save-dtype", "fp32", "--no-fairness",
             "--no-behaviour", "--explain-mistakes", "0")
    weights = {}
    for target in ("1.0", "0.6"):
        folder = tmp_path / target
        assert train.main(argv(small_imdb, tiny_model_dir, folder, *quick, "--negated-negative-target", target)) == 0
        config = json.loads((folder / "artifacts" / "training_config.json").read_text())
        assert config["config"]["negated_negative_target"] == float(target)
        assert config["sizes"]["train"] == 36 + 100  # the same sentences, whatever their target
        with safe_open(folder / "artifacts" / "model.safetensors", "pt") as f:
            weights[target] = {name: f.get_tensor(name) for name in f.keys()}
    assert any(not torch.equal(weights["1.0"][n], weights["0.6"][n]) for n in weights["1.0"])


def test_no_test_scores_no_test_review_and_leaves_a_folder_the_app_serves(small_imdb, tiny_model_dir, tmp_path,
                                                                           monkeypatch):
    from sentiment import assess, tables
    from sentiment.services import Services
    from sentiment.ui import build_app

    def never(*args, **kwargs):
        raise AssertionError("--no-test scored the test split")

    monkeypatch.setattr(assess, "evaluate_into", never)
    monkeypatch.setattr(assess, "fairness_into", never)
    assert train.main(argv(small_imdb, tiny_model_dir, tmp_path, "--epochs", "1", "--no-test", "--int8")) == 0
    folder = tmp_path / "artifacts"
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"model.safetensors", "calibration.json", "behaviour.json", "history.json"} <= names
    assert not any(n.startswith("evaluations/") or n in {"fairness.json", "model.int8.onnx"} for n in names)
    assert set(verify_manifest(folder)["files"]) == names - {"manifest.json"}
    stored = json.loads((folder / "training_config.json").read_text())["config"]
    assert (stored["test"], stored["fairness"], stored["int8"]) == (False, False, False)  # what ran, not what was asked
    services = Services.load(folder, ig_steps=4)
    assert services.set_names == []
    card = tables.model_card_markdown(services.report)
    assert "16 test reviews, none of them scored (--no-test)" in card and "whose weights were kept" in card
    build_app(services, ig_steps=4)


def _quick_run(small_imdb, tiny_model_dir, folder, *extra):
    quick = ("--epochs", "2", "--save-dtype", "fp32", "--no-fairness", "--no-behaviour", "--explain-mistakes", "0",
             "--no-calibrate")
    assert train.main(argv(small_imdb, tiny_model_dir, folder, *quick, *extra)) == 0
    return folder / "artifacts"


def _pool_gap(folder, texts) -> float:
    pairs = identity_pairs(texts, seed=42)
    predictor = Predictor.from_artifacts(folder, precision="fp32", verify=False)
    logits = [np.log(predictor.predict_proba([a, b])) for a, b in pairs]
    return float(np.mean([abs((la[0, 1] - la[0, 0]) - (la[1, 1] - la[1, 0])) for la in logits]))


def test_the_loss_narrows_the_gap_it_measures_and_the_history_records_it(small_imdb, tiny_model_dir, review_tables,
                                                                          tmp_path):
    texts = review_tables[0]["text"].tolist()
    plain = _quick_run(small_imdb, tiny_model_dir, tmp_path / "plain")
    paired = _quick_run(small_imdb, tiny_model_dir, tmp_path / "paired", "--identity-consistency", "50")
    history = json.loads((paired / "history.json").read_text())["epochs"]
    assert history[0]["train_identity_gap"] > 0
    assert "train_identity_gap" not in json.loads((plain / "history.json").read_text())["epochs"][0]
    assert _pool_gap(paired, texts) < 0.75 * _pool_gap(plain, texts)  # 0.12 against 0.19 when written


def test_data_without_identity_terms_says_to_leave_the_flag_out(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "data"
    data.mkdir()
    words = ["great fun", "dull and slow", "a fine score", "weak plot"]
    frame = pd.DataFrame({"text": [f"This was {w}, scene {i} of it." for i in range(8) for w in words],
                          "label": [i % 2 for _ in range(8) for i in range(4)]})
    frame.to_parquet(data / "train.parquet")
    frame.to_parquet(data / "test.parquet")
    assert train.main(argv(data, tiny_model_dir, tmp_path, "--identity-consistency", "1")) == 2
    assert "nothing to pair; leave the flag out" in capsys.readouterr().err


# --- resume ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted(small_imdb, tiny_model_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("uninterrupted")
    assert train.main(argv(small_imdb, tiny_model_dir, folder, *RESUMABLE)) == 0
    return folder


def assert_same_run(folder: Path, reference: Path) -> None:
    """Same final weights and optimizer state, same history (but for timings), same shipped model and predictions."""
    ours = torch.load(folder / "checkpoints" / checkpoint.CHECKPOINT, weights_only=True)
    theirs = torch.load(reference / "checkpoints" / checkpoint.CHECKPOINT, weights_only=True)
    assert ours["model"].keys() == theirs["model"].keys()
    differing = [name for name in ours["model"] if not torch.equal(ours["model"][name], theirs["model"][name])]
    assert not differing, f"weights differ from the uninterrupted run: {differing[:3]}"
    moments = [(a["exp_avg_sq"], b["exp_avg_sq"])
               for a, b in zip(ours["optimizer"]["state"].values(), theirs["optimizer"]["state"].values(), strict=True)]
    assert moments and all(torch.equal(a, b) for a, b in moments)
    strip = [{k: v for k, v in r.items() if k not in TIME_KEYS} for r in ours["state"]["history"]]
    assert strip == [{k: v for k, v in r.items() if k not in TIME_KEYS} for r in theirs["state"]["history"]]
    assert len(strip) == 2
    with safe_open(folder / "artifacts" / "model.safetensors", "pt") as a, \
            safe_open(reference / "artifacts" / "model.safetensors", "pt") as b:
        assert all(torch.equal(a.get_tensor(name), b.get_tensor(name)) for name in b.keys())
    predictions = Path("artifacts", "evaluations", "test", "predictions.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(folder / predictions), pd.read_parquet(reference / predictions))


def test_resume_after_a_crash_matches_an_uninterrupted_run(small_imdb, tiny_model_dir, uninterrupted, tmp_path,
                                                           crash_mid_second_epoch):
    flags = argv(small_imdb, tiny_model_dir, tmp_path, *RESUMABLE)
    with crash_mid_second_epoch():
        train.main(flags)
    assert (tmp_path / "checkpoints" / checkpoint.CHECKPOINT).is_file()
    assert not (tmp_path / "artifacts").exists()

    assert train.main([*flags, "--resume"]) == 0
    verify_manifest(tmp_path / "artifacts")
    assert_same_run(tmp_path, uninterrupted)


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(small_imdb, tiny_model_dir, uninterrupted, tmp_path):
    flags = argv(small_imdb, tiny_model_dir, tmp_path, *RESUMABLE)
    process = subprocess.Popen([sys.executable, "train.py", *flags], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        checkpoint_file = tmp_path / "checkpoints" / checkpoint.CHECKPOINT
        deadline = time.monotonic() + 300
        while not checkpoint_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "train.py ended before it could be killed"
    assert not (tmp_path / "artifacts").exists()

    assert train.main([*flags, "--resume"]) == 0
    assert_same_run(tmp_path, uninterrupted)


def test_resume_with_other_settings_names_the_flags(small_imdb, tiny_model_dir, uninterrupted, tmp_path, capsys):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / checkpoint.CHECKPOINT).write_bytes(
        (uninterrupted / "checkpoints" / checkpoint.CHECKPOINT).read_bytes())
    flags = argv(small_imdb, tiny_model_dir, tmp_path, *RESUMABLE, "--learning-rate", "5e-4", "--max-length", "96",
                 "--eval-tokens-per-batch", "4096", "--resume")
    assert train.main(flags) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: --resume:")
    assert "--learning-rate" in error and "--max-length" in error
    assert "--eval-tokens-per-batch" not in error  # inference batching may change between runs
    assert not (tmp_path / "artifacts").exists()


def test_a_checkpoint_from_before_dropout_masks_existed_resumes_only_with_bernoulli_masks(
        small_imdb, tiny_model_dir, uninterrupted, tmp_path, capsys):
    payload = torch.load(uninterrupted / "checkpoints" / checkpoint.CHECKPOINT, weights_only=True)
    del payload["config"]["dropout_masks"]  # as a checkpoint written before the flag
    (tmp_path / "checkpoints").mkdir()
    torch.save(payload, tmp_path / "checkpoints" / checkpoint.CHECKPOINT)
    best = Path("checkpoints", checkpoint.BEST)
    (tmp_path / best).write_bytes((uninterrupted / best).read_bytes())
    flags = argv(small_imdb, tiny_model_dir, tmp_path, *RESUMABLE, "--resume")
    assert train.main(flags) == 2
    assert "--dropout-masks" in capsys.readouterr().err
    assert train.main([*flags, "--dropout-masks", "bernoulli"]) == 0


def test_resume_without_a_checkpoint_says_where_it_looked(small_imdb, tiny_model_dir, tmp_path):
    from sentiment.config import TrainConfig

    config = TrainConfig(data=str(small_imdb), model=str(tiny_model_dir), output_dir=str(tmp_path / "artifacts"),
                         checkpoint_dir=str(tmp_path / "nothing-here"), max_length=64, num_threads=1, device="cpu",
                         progress=False, resume=True)
    with pytest.raises(SentimentError, match="--resume: no checkpoint at") as err:
        train.train(config)
    assert "nothing-here" in str(err.value)


# --- the command line ------------------------------------------------------------------------------------------


def test_train_py_exits_2_with_one_error_line_on_bad_data(tmp_path, tiny_model_dir):
    bad = tmp_path / "reviews.csv"
    bad.write_text("review,label\nGreat.,1\nAwful.,0\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "train.py", "--data", str(bad), "--model", str(tiny_model_dir),
                             "--output-dir", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ck")],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [result.stderr.strip().splitlines()[-1]]
    assert "reviews.csv" in errors[0] and "no column 'text'" in errors[0]
    assert result.stdout == ""


def test_training_logits_take_the_first_position_path_unless_ddp_wraps_the_model(tiny_model_dir, monkeypatch):
    from types import SimpleNamespace

    from sentiment import training
    from sentiment.modeling import load_base_classifier

    model = load_base_classifier(str(tiny_model_dir)).eval()
    inputs = {"input_ids": torch.randint(1000, 2000, (2, 9)), "attention_mask": torch.ones(2, 9, dtype=torch.long)}
    calls = []
    shortcut = training.first_position_logits
    monkeypatch.setattr(training, "first_position_logits", lambda *a, **k: calls.append(1) or shortcut(*a, **k))
    plain = training.classify(SimpleNamespace(model=model, forward_model=model), inputs)
    assert calls == [1]
    ddp = SimpleNamespace(model=model, forward_model=lambda **k: model(**k))  # a wrapper whose forward must run
    torch.testing.assert_close(training.classify(ddp, inputs), plain, rtol=1e-5, atol=1e-5)
    assert calls == [1]
