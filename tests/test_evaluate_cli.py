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


def test_the_own_validation_split_is_the_one_the_temperature_was_fitted_on(tiny_artifacts, small_imdb, tmp_path):
    """--split validation on the run's own data: the reviews train.py held out, scored as calibration scored them."""
    import pandas as pd

    from sentiment.artifacts import load_evaluation_set
    from sentiment.data import config_splits
    from sentiment.services import _texts

    folder = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    assert evaluate.main(["--artifacts", str(folder), "--data", str(small_imdb), "--split", "validation",
                          "--name", "validation", "--explain-mistakes", "0", *CPU]) == 0
    verify_manifest(folder)
    evaluation = read_json(folder / "evaluations" / "validation" / "evaluation.json")
    metrics = read_json(folder / "evaluations" / "validation" / "metrics.json")
    calibration = read_json(folder / "calibration.json")
    assert metrics["n"] == calibration["n"] == 5 and evaluation["data"].endswith("[validation]")
    assert metrics["ece"] == pytest.approx(calibration["after"]["ece"], abs=1e-4)  # the folded weights, saved
    assert metrics["log_loss"] == pytest.approx(calibration["after"]["log_loss"], abs=1e-4)
    validation = config_splits(read_json(folder / "training_config.json")["config"]).validation
    rows = pd.read_parquet(folder / "evaluations" / "validation" / "predictions.parquet")["row"]
    assert sorted(rows) == sorted(validation["row"])
    texts, note = _texts(load_evaluation_set(folder, "validation"), None)  # the app's error cases: from train
    assert set(texts.values()) == set(validation["text"]) and "5 of 5" in note


def test_the_validation_sentences_are_cut_from_the_held_out_reviews(tiny_artifacts, small_imdb, tmp_path, capsys):
    """--split validation-sentences: as many sentences as the reviews the run held out, cut from them with their
    labels, picked by --seed, and read back by the app from the train split's reviews
    (from the app's --data where it is given, as for the run's other sets)."""
    from sentiment.artifacts import load_evaluation_set
    from sentiment.crops import MAX_WORDS, MIN_WORDS
    from sentiment.data import config_splits
    from sentiment.services import Services, _texts
    from sentiment.sources import sentences

    folder = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    argv = ["--artifacts", str(folder), "--data", str(small_imdb), "--split", "validation-sentences",
            "--explain-mistakes", "0", *CPU]
    for name, more in (("sentences", []), ("again", []), ("other", ["--seed", "7"])):
        assert evaluate.main([*argv, "--name", name, *more]) == 0
    verify_manifest(folder)
    validation = config_splits(read_json(folder / "training_config.json")["config"]).validation.set_index("row")
    sets = {name: load_evaluation_set(folder, name) for name in ("sentences", "again", "other")}
    found = sets["sentences"]["predictions"].sort_values("row")
    assert len(found) == len(validation) == 5 and found["row"].tolist() == list(range(5))
    assert found["labels"].tolist() == validation.loc[found["review_row"], "labels"].tolist()  # its review's label
    texts, note = _texts(sets["sentences"], None)
    assert "5 of 5" in note
    for key, review_row in zip(found["key"], found["review_row"], strict=True):
        assert texts[key] in sentences(validation.loc[review_row, "text"])  # a sentence of its own review
        assert MIN_WORDS <= len(texts[key].split()) <= MAX_WORDS
    assert sets["sentences"]["info"]["data"].endswith("[validation], sentences cut with seed 42")
    assert sets["again"]["predictions"].sort_values("row")["key"].tolist() == found["key"].tolist()
    assert set(sets["other"]["predictions"]["key"]) != set(found["key"])  # another seed, other sentences
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(small_imdb, elsewhere)
    services = Services.load(folder, str(elsewhere), ig_steps=4)  # the app's --data, as for the run's test set
    assert services.data_messages["sentences"].startswith(f"Review texts joined from `{elsewhere}")
    assert evaluate.main([*argv, "--name", "test"]) == 2
    assert "another --name (for example valsent)" in capsys.readouterr().err


def test_validation_of_other_data_is_refused_with_the_data_the_run_was_given(tiny_artifacts, review_tables, tmp_path,
                                                                           capsys):
    """No data set this project loads has a validation split of its own: other data is not quietly scored whole."""
    other = tmp_path / "other.csv"
    review_tables[0].head(8).to_csv(other, index=False)
    before = sorted(p.name for p in (tiny_artifacts / "evaluations").iterdir())
    for split in ("validation", "validation-sentences"):
        assert evaluate.main(["--artifacts", str(tiny_artifacts), "--data", str(other), "--split", split,
                              "--name", "other", *CPU]) == 2
        error = capsys.readouterr().err
        assert "held out of the --data it was given" in error and "small_imdb" in error and "--split test" in error
    assert sorted(p.name for p in (tiny_artifacts / "evaluations").iterdir()) == before


def test_a_hub_alias_and_a_relative_path_name_the_data_they_resolve_to(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert evaluate.data_identity("imdb") == evaluate.data_identity("stanfordnlp/imdb") == "stanfordnlp/imdb"
    (tmp_path / "imdb").mkdir()  # a local folder of that name is what the loader reads
    assert evaluate.data_identity("imdb") == str(tmp_path / "imdb") == evaluate.data_identity(str(tmp_path / "imdb"))


def test_the_own_validation_split_of_one_file_keeps_its_text_column(tiny_model_dir, review_tables, tmp_path):
    """A run trained on one file under another text column: its validation reviews are rebuilt and read back
    (the app's error cases) by that column, and --max-samples takes a stratified sample of them and of their
    sentences."""
    import pandas as pd

    import train
    from sentiment.artifacts import load_evaluation_set
    from sentiment.services import _texts

    reviews = tmp_path / "reviews.csv"
    pd.concat(review_tables, ignore_index=True).rename(columns={"text": "body"}).to_csv(reviews, index=False)
    folder = tmp_path / "artifacts"
    assert train.main(["--data", str(reviews), "--text-column", "body", "--model", str(tiny_model_dir),
                       "--output-dir", str(folder), "--checkpoint-dir", str(tmp_path / "checkpoints"),
                       "--max-steps", "1", "--batch-size", "8", "--max-length", "64", "--validation-split", "0.25",
                       "--no-int8", "--no-fairness", "--no-behaviour", *CPU]) == 0
    argv = ["--artifacts", str(folder), "--data", str(reviews), "--split", "validation", "--explain-mistakes", "0"]
    assert evaluate.main([*argv, "--name", "validation", *CPU]) == 0
    assert evaluate.main([*argv, "--name", "some", "--max-samples", "4", *CPU]) == 0
    whole, some = (load_evaluation_set(folder, name) for name in ("validation", "some"))
    assert whole["info"]["text_column"] == "body" and len(whole["predictions"]) == 13  # a quarter of 51
    texts, note = _texts(whole, None)
    assert len(texts) == 13 and "13 of 13" in note
    assert len(some["predictions"]) == 4 and set(some["predictions"]["row"]) <= set(whole["predictions"]["row"])
    assert sorted(some["predictions"]["labels"]) == [0, 0, 1, 1]
    sentence_argv = [*argv[:5], "validation-sentences", *argv[6:]]
    for name, more in (("sentences", []), ("some-sentences", ["--max-samples", "4"])):
        assert evaluate.main([*sentence_argv, "--name", name, *more, *CPU]) == 0
    whole, some = (load_evaluation_set(folder, name)["predictions"].set_index("row")
                   for name in ("sentences", "some-sentences"))
    assert len(whole) == 13 and len(some) == 4 and sorted(some["labels"]) == [0, 0, 1, 1]
    assert some["key"].equals(whole.loc[some.index, "key"])  # a sample of the whole set's sentences, by its rows
    assert whole["review_row"].isin(load_evaluation_set(folder, "validation")["predictions"]["row"]).all()


def test_the_own_validation_split_needs_the_training_record(tiny_artifacts, small_imdb, tmp_path, capsys):
    from sentiment.artifacts import write_manifest

    folder = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    (folder / "training_config.json").unlink()
    write_manifest(folder)
    assert evaluate.main(["--artifacts", str(folder), "--data", str(small_imdb), "--split", "validation",
                          "--name", "validation", *CPU]) == 2
    error = capsys.readouterr().err
    assert "has no training_config.json" in error and "--split test" in error


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


def test_an_evaluation_set_needs_data_and_a_name(tmp_path, capsys):
    assert evaluate.main(["--artifacts", str(tmp_path)]) == 2  # neither a set to evaluate nor a command
    assert "give --data (the labelled data) and --name" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--behaviour"], "--behaviour is a command of its own now, given first: python evaluate.py behaviour"),
    (["--int8", "--no-progress"], "--int8 is a command of its own now, given first: python evaluate.py int8"),
    (["--device", "cpu", "--fairness"], "--fairness is a command of its own now, given first: python evaluate.py "
                                        "fairness"),
    (["--no-progress", "fairness"], "give the command first: python evaluate.py fairness"),
])
def test_a_command_out_of_place_says_where_it_goes(argv, message, tmp_path, capsys):
    assert evaluate.main(["--artifacts", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_set_may_be_named_like_a_command(tiny_artifacts, review_tables, tmp_path):
    folder = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    review_tables[0].groupby("label").head(4).to_csv(tmp_path / "few.csv", index=False)
    assert evaluate.main(["--artifacts", str(folder), "--data", str(tmp_path / "few.csv"), "--name", "int8",
                          "--explain-mistakes", "0", *CPU]) == 0
    assert "evaluations/int8/metrics.json" in verify_manifest(folder)["files"]


@pytest.mark.parametrize(("command", "own", "not_its_own"), [
    ("fairness", "--fairness-max-reviews", "--name"), ("behaviour", "--seed", "--data"),
    ("int8", "--precision", "--seed"), (None, "--name", "--fairness-max-reviews")])
def test_each_command_has_its_own_flags_and_help(command, own, not_its_own, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        evaluate.main([*([command] if command else []), "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert own in help_text and not_its_own not in help_text and "--no-progress" in help_text
    if command:  # every command takes --no-progress, and fails on the missing folder, not on the flag
        assert evaluate.main([command, "--artifacts", str(tmp_path / "nothing"), "--no-progress"]) == 2
        assert "no manifest.json" in capsys.readouterr().err
