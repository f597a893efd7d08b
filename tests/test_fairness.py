"""The fairness probe where users meet it: the app's fairness tab, fairness.json from train.py and
evaluate.py fairness, and training with counterfactual augmentation."""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
import pytest

import evaluate
import train
from sentiment import augment
from sentiment.artifacts import (
    FAIRNESS,
    MANIFEST,
    TRAINING_CONFIG,
    read_json,
    sha256_file,
    verify_manifest,
    write_manifest,
)
from sentiment.augment import variants
from sentiment.data import review_key
from sentiment.lexicon import CATEGORIES
from sentiment.predict import MAX_TEXT_CHARS
from sentiment.services import Handlers, Services
from sentiment.ui import FAIRNESS_EXAMPLE, build_app

CATEGORY_NAMES = [c.name for c in CATEGORIES]


# --- the app's fairness tab ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def handlers(tiny_artifacts) -> Handlers:
    return Handlers(Services.load(tiny_artifacts, None, ig_steps=8))


def test_fairness_handler_scores_every_variant(handlers):
    table, figure, note = handlers.fairness(FAIRNESS_EXAMPLE)
    expected = variants(FAIRNESS_EXAMPLE)
    assert isinstance(table, pd.DataFrame) and isinstance(figure, go.Figure) and isinstance(note, str)
    assert list(zip(table["category"], table["swapped to"], table["variant"], strict=True)) == \
        [(v.category, v.group, v.text) for v in expected]
    predictor = handlers.services.predictor
    probs = predictor.predict_proba([FAIRNESS_EXAMPLE] + [v.text for v in expected])[:, 1]
    assert table["P(positive)"].tolist() == pytest.approx(probs[1:], abs=1e-4)
    assert table["shift"].tolist() == pytest.approx(probs[1:] - probs[0], abs=2e-4)
    assert (table["label flips"] == ((probs[1:] >= 0.5) != (probs[0] >= 0.5))).all()
    assert len(figure.data) == 1 and len(figure.data[0].y) == len(expected)
    assert f"{probs[0]:.4f}" in note and "gender: 5; gender (first names): 1; religion: 1" in note


def test_fairness_handler_says_when_there_is_nothing_to_swap(handlers):
    table, figure, note = handlers.fairness("A slow, beautiful film; the score is great.")
    assert table.empty and list(table.columns) == ["category", "swapped to", "P(positive)", "shift",
                                                   "label flips", "variant"]
    assert figure is None and "No identity terms found" in note


@pytest.mark.parametrize("text", ["", "  \n\t ", "he " + "x" * MAX_TEXT_CHARS, "she \ud800"],
                         ids=["empty", "whitespace", "oversized", "surrogate"])
def test_fairness_handler_turns_bad_input_into_a_clear_error(handlers, text):
    with pytest.raises(gr.Error):
        handlers.fairness(text)


# --- fairness.json in the artifacts ----------------------------------------------------------------------------


def test_train_py_writes_the_fairness_report_into_the_artifacts(tiny_artifacts, review_tables):
    report = read_json(tiny_artifacts / FAIRNESS)
    assert set(report) == {"suite", "probe", "model"}
    assert report["model"]["engine"] == "torch"  # train.py's predictor, made before any int8 engine
    assert list(report["suite"]["categories"]) == CATEGORY_NAMES
    assert FAIRNESS in verify_manifest(tiny_artifacts)["files"]
    test_keys = {review_key(t) for t in review_tables[1]["text"]}
    probed = [r["key"] for c in report["probe"]["categories"].values() for r in c.get("largest_shifts", [])]
    assert probed and set(probed) <= test_keys


FAIRNESS_ONLY = ["fairness", "--device", "cpu", "--precision", "fp32", "--num-threads", "1", "--no-progress"]


@pytest.fixture()
def artifacts_copy(tiny_artifacts, tmp_path) -> Path:
    folder = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    return folder


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in folder.rglob("*")
            if p.is_file() and p.name not in (FAIRNESS, MANIFEST)}


def test_evaluate_fairness_adds_the_report_to_a_folder_without_one(artifacts_copy, tiny_artifacts):
    """From the folder's stored training config alone: the same test split the training run used."""
    (artifacts_copy / FAIRNESS).unlink()
    write_manifest(artifacts_copy)
    before = file_hashes(artifacts_copy)
    assert evaluate.main([*FAIRNESS_ONLY, "--artifacts", str(artifacts_copy)]) == 0
    manifest = verify_manifest(artifacts_copy)
    assert set(manifest["files"]) == set(before) | {FAIRNESS}
    assert file_hashes(artifacts_copy) == before  # the model and the evaluation are left as they were
    # no temporary or old folder; the writers' lock stays
    assert sorted(p.name for p in artifacts_copy.parent.iterdir()) == [".artifacts.lock", "artifacts"]
    added, original = read_json(artifacts_copy / FAIRNESS), read_json(tiny_artifacts / FAIRNESS)
    assert (added["model"]["engine"], added["model"]["precision"]) == ("torch", "fp32")
    blocks = build_app(Services.load(artifacts_copy, None, ig_steps=8))  # the Fairness tab says what scored it
    assert any("Template suite" in (b.value or "") and "Served by `torch` in `fp32`" in b.value
               for b in blocks.blocks.values() if isinstance(b, gr.Markdown))
    # the same model, test split and seed as the training run: the same report, but for batching noise
    for name, category in original["suite"]["categories"].items():
        for group, stats in category["groups"].items():
            assert added["suite"]["categories"][name]["groups"][group]["mean"] == pytest.approx(stats["mean"],
                                                                                               abs=1e-4)
        assert added["probe"]["categories"][name]["variants"] == original["probe"]["categories"][name]["variants"]


def test_evaluate_fairness_of_a_folder_without_its_training_config_takes_the_data_given(artifacts_copy, small_imdb,
                                                                                          capsys):
    """A folder trained elsewhere has no record of its test reviews: --data names them, and without it the error
    says to give it."""
    (artifacts_copy / TRAINING_CONFIG).unlink()
    write_manifest(artifacts_copy)
    assert evaluate.main([*FAIRNESS_ONLY, "--artifacts", str(artifacts_copy)]) == 2
    assert f"no {TRAINING_CONFIG}, so the data it was tested on is unknown; pass --data" in capsys.readouterr().err
    argv = [*FAIRNESS_ONLY, "--artifacts", str(artifacts_copy), "--data", str(small_imdb),
            "--fairness-max-reviews", "2"]
    assert evaluate.main(argv) == 0
    verify_manifest(artifacts_copy)
    probe = read_json(artifacts_copy / FAIRNESS)["probe"]
    assert probe["max_reviews"] == 2 and any(c["reviews"] for c in probe["categories"].values())

def test_evaluate_fairness_replaces_an_existing_report(artifacts_copy, small_imdb):
    before = file_hashes(artifacts_copy)
    argv = [*FAIRNESS_ONLY, "--artifacts", str(artifacts_copy), "--data", str(small_imdb),
            "--fairness-max-reviews", "1"]
    assert evaluate.main(argv) == 0
    verify_manifest(artifacts_copy)
    assert file_hashes(artifacts_copy) == before
    probe = read_json(artifacts_copy / FAIRNESS)["probe"]
    assert probe["max_reviews"] == 1
    assert all(c["reviews"] <= 1 for c in probe["categories"].values())
    assert any(c["reviews"] == 1 for c in probe["categories"].values())


def test_a_failed_fairness_run_leaves_the_artifacts_as_they_were(artifacts_copy, small_imdb, monkeypatch):
    from sentiment import assess

    report_before = (artifacts_copy / FAIRNESS).read_bytes()

    def write_half_then_crash(path, payload):
        Path(path).write_text('{"suite": ', encoding="utf-8")
        raise RuntimeError("disk full")

    monkeypatch.setattr(assess, "write_json", write_half_then_crash)
    with pytest.raises(RuntimeError, match="disk full"):
        evaluate.main([*FAIRNESS_ONLY, "--artifacts", str(artifacts_copy), "--data", str(small_imdb)])
    verify_manifest(artifacts_copy)
    assert (artifacts_copy / FAIRNESS).read_bytes() == report_before
    assert sorted(p.name for p in artifacts_copy.parent.iterdir()) == [".artifacts.lock", "artifacts"]


def test_evaluate_fairness_without_trained_artifacts_exits_2(tmp_path, small_imdb, capsys):
    argv = [*FAIRNESS_ONLY, "--artifacts", str(tmp_path / "nothing"), "--data", str(small_imdb)]
    assert evaluate.main(argv) == 2
    assert "no manifest.json" in capsys.readouterr().err


# Mitigation: counterfactual data augmentation

AUGMENT_TEXTS = ["He was wonderful and his wife was too.", "A film with no people in it at all.",
                 "The Muslim family at the centre of it is drawn with care.", "Mary hated every minute."]


def test_counterfactual_copies_swap_identity_words_and_keep_labels():
    copies = augment.counterfactual_copies(AUGMENT_TEXTS, [1, 0, 1, 0], share=1.0, seed=0)
    assert len(copies) == 3  # every text that mentions identity terms, and none other
    for (copy, label), (text, original_label) in zip(copies, [(AUGMENT_TEXTS[i], [1, 0, 1, 0][i]) for i in (0, 2, 3)],
                                                      strict=True):
        assert label == original_label and copy != text
        assert augment.WORD.sub("", copy) == augment.WORD.sub("", text)  # only whole words changed
    assert augment.counterfactual_copies(AUGMENT_TEXTS, [1, 0, 1, 0], share=1.0, seed=0) == copies
    assert augment.counterfactual_copies(AUGMENT_TEXTS, [1, 0, 1, 0], share=0.0, seed=0) == []


def test_train_with_counterfactual_augmentation_trains_on_the_copies(tiny_model_dir, small_imdb, tmp_path):
    out = tmp_path / "artifacts"
    argv = ["--data", str(small_imdb), "--model", str(tiny_model_dir), "--output-dir", str(out),
            "--checkpoint-dir", str(tmp_path / "ck"), "--max-steps", "2", "--epochs", "1", "--precision", "fp32",
            "--no-progress", "--no-fairness", "--no-int8", "--max-length", "64"]
    assert train.main([*argv, "--counterfactual-augmentation", "1.0"]) == 0
    augmented = read_json(out / "training_config.json")
    assert augmented["config"]["counterfactual_augmentation"] == 1.0
    assert train.main([*argv, "--checkpoint-dir", str(tmp_path / "ck2")]) == 0
    plain = read_json(out / "training_config.json")
    assert augmented["sizes"]["train"] > plain["sizes"]["train"]
    assert augmented["sizes"]["test"] == plain["sizes"]["test"]
