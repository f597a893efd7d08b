"""evaluate.py's commands check their own flags; its guard on the name "test": the training run's own test evaluation
is recomputed, never replaced."""

from __future__ import annotations

import shutil

import pytest

import evaluate
from sentiment.artifacts import read_json, verify_manifest

CPU = ["--precision", "fp32", "--no-progress"]


def test_another_set_named_test_is_refused_and_nothing_changes(tiny_artifacts, review_tables, tmp_path, capsys):
    other = tmp_path / "other.csv"
    review_tables[0].head(8).to_csv(other, index=False)
    before = (tiny_artifacts / "evaluations" / "test" / "evaluation.json").read_bytes()
    assert evaluate.main(["--artifacts", str(tiny_artifacts), "--data", str(other), "--name", "test", *CPU]) == 2
    error = capsys.readouterr().err
    assert "own test evaluation" in error and "another --name" in error
    assert (tiny_artifacts / "evaluations" / "test" / "evaluation.json").read_bytes() == before


def test_a_sample_of_the_own_test_split_is_refused_too(tiny_artifacts, small_imdb, capsys):
    argv = ["--artifacts", str(tiny_artifacts), "--data", str(small_imdb), "--name", "test", "--max-samples", "4"]
    assert evaluate.main([*argv, *CPU]) == 2
    assert "no --max-samples" in capsys.readouterr().err


def test_the_own_test_split_may_be_recomputed(tiny_artifacts, small_imdb, tmp_path):
    folder = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    assert evaluate.main(["--artifacts", str(folder), "--data", str(small_imdb), "--name", "test", *CPU]) == 0
    verify_manifest(folder)
    assert read_json(folder / "evaluations" / "test" / "evaluation.json")["n"] == 16


def test_the_own_test_split_of_one_file_is_the_fifth_train_py_held_out(tiny_model_dir, review_tables, tmp_path):
    import pandas as pd

    import train

    reviews = tmp_path / "reviews.csv"
    pd.concat(review_tables, ignore_index=True).to_csv(reviews, index=False)  # 64 reviews, no test split
    folder = tmp_path / "artifacts"
    assert train.main(["--data", str(reviews), "--model", str(tiny_model_dir), "--output-dir", str(folder),
                       "--checkpoint-dir", str(tmp_path / "checkpoints"), "--max-steps", "1", "--batch-size", "8",
                       "--max-length", "64", "--no-int8", "--no-fairness", "--no-behaviour", *CPU]) == 0
    test = folder / "evaluations" / "test"
    trained = pd.read_parquet(test / "predictions.parquet")
    assert evaluate.main(["--artifacts", str(folder), "--data", str(reviews), "--name", "test", *CPU]) == 0
    assert read_json(test / "evaluation.json")["n"] == len(trained) == 13  # a fifth of the 64, not every row
    assert set(pd.read_parquet(test / "predictions.parquet")["key"]) == set(trained["key"])


@pytest.mark.parametrize(("argv", "message"), [
    (["fairness", "--fairness-max-reviews", "0"], "--fairness-max-reviews: must be at least 1, not 0"),
    (["int8", "--precision", "int8"], "--precision: must be one of auto, bf16, fp16, fp32, not 'int8'"),
    (["behaviour", "--num-threads", "0"], "--num-threads: must be at least 1, not 0"),
    (["--data", "reviews.csv", "--name", "a/b"], "--name 'a/b': use letters, digits"),
])
def test_each_command_checks_its_own_flags(argv, message, tmp_path, capsys):
    """Before anything is loaded: the folder need not exist."""
    assert evaluate.main([*argv, "--artifacts", str(tmp_path / "nothing")]) == 2
    assert message in capsys.readouterr().err
