"""--stage average: the weight-space average of two classifiers (WiSE-FT) on the split and window of their
records, validated, calibrated and evaluated as a trained folder is; and its refusals."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import train
from sentiment.artifacts import read_json, verify_manifest
from sentiment.averaging import average_classifiers, inherited_settings, related
from sentiment.config import TrainConfig
from sentiment.data import config_splits
from sentiment.errors import SentimentError
from sentiment.predict import Predictor

# No --max-length: tiny_artifacts was trained with a 128-token window, and the average takes it from its record.
FLAGS = ["--precision", "fp32", "--device", "cpu", "--num-threads", "1", "--no-progress", "--no-int8",
         "--save-dtype", "fp32", "--fairness-max-reviews", "4"]
HEAD = ("classifier.weight", "classifier.bias")  # the calibration divides these by the temperature it fits


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v.float() for k, v in load_file(folder / "model.safetensors").items()}


@pytest.fixture(scope="module")
def averaged(tiny_model_dir: Path, tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quarter of the trained tiny folder with three quarters of the model it was fine-tuned from."""
    out = tmp_path_factory.mktemp("averaged") / "artifacts"
    assert train.main(["--stage", "average", "--model", str(tiny_model_dir), "--average-with", str(tiny_artifacts),
                       "--average-weight", "0.25", "--output-dir", str(out), *FLAGS]) == 0
    return out


def test_the_average_is_the_interpolation_of_the_two_saved_weights(averaged, tiny_model_dir, tiny_artifacts):
    base, tuned, mixed = weights(tiny_model_dir), weights(tiny_artifacts), weights(averaged)
    assert mixed.keys() == base.keys()
    temperature = read_json(averaged / "calibration.json")["temperature"]
    assert temperature != pytest.approx(1.0)
    for name in mixed:
        expected = 0.75 * base[name] + 0.25 * tuned[name]
        got = mixed[name] * temperature if name in HEAD else mixed[name]
        assert torch.allclose(got, expected, atol=1e-5), name
    assert not torch.allclose(mixed["bert.pooler.dense.weight"], base["bert.pooler.dense.weight"])


def test_the_folder_is_complete_on_the_split_and_window_of_the_trained_model(averaged, tiny_model_dir,
                                                                             tiny_artifacts):
    verify_manifest(averaged)
    names = {p.relative_to(averaged).as_posix() for p in averaged.rglob("*") if p.is_file()}
    assert {"calibration.json", "fairness.json", "behaviour.json", "evaluations/test/metrics.json"} <= names
    history, record = read_json(averaged / "history.json"), read_json(averaged / "training_config.json")
    assert history["epochs"] == [] and history["best_epoch"] is None
    base_part, tuned_part = history["averaged"]
    assert (base_part["folder"], base_part["weight"], base_part["epochs"]) == (str(tiny_model_dir), 0.75, [])
    assert tuned_part["weight"] == 0.25 and tuned_part["after_epoch"] == 0  # the base has no record to continue
    assert tuned_part["epochs"] == read_json(tiny_artifacts / "history.json")["epochs"]
    assert record["averaged_with"] == read_json(tiny_artifacts / "training_config.json")
    trained = record["averaged_with"]["config"]
    for name in ("data", "seed", "validation_split", "validation_grouping", "max_length", "truncation"):
        assert record["config"][name] == trained[name], name  # from the record, not this command's defaults
    assert record["config"]["max_length"] == 128
    assert record["sizes"] == {"validation": len(config_splits(trained).validation), "test": 16}


def test_the_stored_validation_accuracy_is_that_of_the_served_average(averaged):
    history, record = read_json(averaged / "history.json"), read_json(averaged / "training_config.json")
    validation = config_splits(record["config"]).validation
    # The temperature folded in afterwards changes no argmax.
    probs = Predictor.from_artifacts(averaged, precision="fp32").predict_proba(validation["text"].tolist())
    accuracy = float((probs.argmax(-1) == validation["labels"].to_numpy()).mean())
    assert history["average"]["eval_accuracy"] == pytest.approx(accuracy)
    assert np.isfinite(history["average"]["eval_loss"])


def record(**config) -> dict:
    return {"config": {"data": "data/imdb", "seed": 42, "max_length": 512, **config}}


def test_settings_come_from_every_record_of_both_lineages_and_must_agree():
    shipped = record(validation_grouping="random")
    tuned = {**record(validation_grouping="random"), "continued_from": shipped}
    settings = inherited_settings({"--model": shipped, "--average-with": tuned, "other": None})
    assert settings["validation_grouping"] == "random" and settings["seed"] == 42
    assert settings["validation_split"] == 0.1 and settings["truncation"] == "head+tail"  # missing: old defaults
    assert inherited_settings({"--model": None, "--average-with": None}) == {}
    other_seed = {**record(seed=7), "continued_from": shipped}
    with pytest.raises(SentimentError, match=r"different --seed \(42 in the lineage of --model, 7 in that of "
                                             r"--average-with\)"):
        inherited_settings({"--model": shipped, "--average-with": other_seed})
    # An ancestor's split counts too: a model continued on another split has seen the other's validation.
    moved = {**record(), "continued_from": record(validation_split=0.2)}
    with pytest.raises(SentimentError, match="different --validation-split"):
        inherited_settings({"--model": record(), "--average-with": moved})


def test_a_continuation_counts_its_epochs_after_those_of_the_model_it_continues(tmp_path):
    from sentiment.artifacts import write_json
    from sentiment.averaging import averaged_histories

    shipped = record()
    for name, rec, epochs in (("shipped", shipped, 3), ("tuned", {**record(), "continued_from": shipped}, 1)):
        (tmp_path / name).mkdir()
        write_json(tmp_path / name / "training_config.json", rec)
        write_json(tmp_path / name / "history.json", {"epochs": [{"epoch": e + 1} for e in range(epochs)]})
    parts = averaged_histories(tmp_path / "shipped", tmp_path / "tuned", 0.25)
    assert [(p["weight"], len(p["epochs"]), p["after_epoch"]) for p in parts] == [(0.75, 3, 0), (0.25, 1, 3)]
    (tmp_path / "tuned" / "training_config.json").unlink()
    assert averaged_histories(tmp_path / "shipped", tmp_path / "tuned", 0.25)[1]["after_epoch"] == 0


def test_related_follows_the_lineage():
    shipped = record()
    tuned = {**record(seed=1), "continued_from": shipped}
    assert related(shipped, tuned) and related(tuned, shipped)
    assert related({**record(seed=2), "continued_from": shipped}, tuned)  # both continue one folder
    assert not related(record(seed=3), tuned) and not related(None, None)


def test_the_stage_and_its_folder_come_together():
    with pytest.raises(SentimentError, match="--average-with: needed with --stage average"):
        TrainConfig(stage="average")
    with pytest.raises(SentimentError, match="--average-with: only --stage average takes it"):
        TrainConfig(average_with="runs/tuned")
    for weight in (0.0, 1.0, 1.5):
        with pytest.raises(SentimentError, match=r"--average-weight: must be in \(0.0, 1.0\)"):
            TrainConfig(stage="average", average_with="runs/tuned", average_weight=weight)


@pytest.mark.parametrize(("settings", "says"), [
    ({"average_weight": 0.25}, "--average-weight: only --stage average takes it"),
    ({"stage": "mlm", "average_weight": 0.25}, "--average-weight: only --stage average takes it"),
    ({"mlm_probability": 0.2}, "--mlm-probability: only --stage mlm takes it"),
    ({"stage": "mlm", "targeted_augmentation": 100}, "--targeted-augmentation: only --stage classify takes it"),
    ({"stage": "mlm", "sentence_crops": 100}, "--sentence-crops: only --stage classify takes it"),
    ({"stage": "average", "average_with": "runs/tuned", "identity_consistency": 1.0},
     "--identity-consistency: only --stage classify takes it"),
    ({"stage": "average", "average_with": "runs/tuned", "learning_rate": 1e-5},
     "--learning-rate: --stage average trains nothing, so it takes no training flag"),
    ({"stage": "average", "average_with": "runs/tuned", "epochs": 1},
     "--epochs: --stage average trains nothing"),
    ({"negated_negative_target": 0.7}, "--negated-negative-target: only applies with --targeted-augmentation"),
    ({"crop_teacher": "runs/teacher"}, "--crop-teacher: only applies with --sentence-crops or --negation-crops"),
])
def test_a_flag_the_run_would_not_use_is_refused_not_recorded(settings, says):
    with pytest.raises(SentimentError, match=f"^{re.escape(says)}"):
        TrainConfig(**settings)


def test_flags_a_stage_uses_are_taken():
    TrainConfig(stage="mlm", mlm_probability=0.2, learning_rate=1e-4, epochs=1, max_steps=3)
    TrainConfig(stage="average", average_with="runs/tuned", average_weight=0.25, max_length=256, seed=3)
    TrainConfig(targeted_augmentation=100, negated_negative_target=0.7, negation_crops=10, crop_teacher="runs/t")


def test_train_py_refuses_a_base_encoder_with_one_line(tiny_model_dir, tmp_path, capsys):
    from transformers import BertModel

    BertModel.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "encoder")  # no classifier head
    code = train.main(["--stage", "average", "--model", str(tmp_path / "encoder"), "--average-with",
                       str(tiny_model_dir), "--output-dir", str(tmp_path / "out"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --model ") and "not a trained classifier (2 weights missing, such as " \
        "classifier.bias)" in err
    assert not (tmp_path / "out").exists()


def test_classifiers_of_another_shape_or_vocabulary_or_no_folder_are_refused(tiny_model_dir, tokenizer, tmp_path):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    other = BertForSequenceClassification(BertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1}))
    other.save_pretrained(tmp_path / "other")
    tokenizer.save_pretrained(tmp_path / "other")
    with pytest.raises(SentimentError, match="differ in shape at"):
        average_classifiers(tiny_model_dir, tmp_path / "other", 0.5)
    shutil.copytree(tiny_model_dir, tmp_path / "words")
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "film"]) + "\n")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "words" / name).unlink(missing_ok=True)
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "words")
    with pytest.raises(SentimentError, match="different vocabularies"):
        average_classifiers(tiny_model_dir, tmp_path / "words", 0.5)
    with pytest.raises(SentimentError, match="--average-with .*missing: no saved classifier here"):
        average_classifiers(tiny_model_dir, tmp_path / "missing", 0.5)
    with pytest.raises(SentimentError, match="between 0 and 1"):
        average_classifiers(tiny_model_dir, tiny_model_dir, 1.0)
