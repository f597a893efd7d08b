"""Every supported data format gives the same reviews and labels; every bad input gets an error naming it."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from sentiment.data import load_splits, map_labels, parse_label_map, review_key, sample, texts_by_key
from sentiment.errors import SentimentError
from sentiment.sources import read_table

SEED = 7


@pytest.fixture(scope="module")
def frames(review_tables) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) tables of the fixture's reviews, columns text and label; the same ones `small_imdb` holds."""
    return review_tables


def write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    return path


def write_acl(frames: tuple[pd.DataFrame, pd.DataFrame], root: Path) -> Path:
    """The original aclImdb layout: {train,test}/{pos,neg}/<id>_<rating>.txt, plus files the loader must skip."""
    for split, frame in zip(("train", "test"), frames, strict=True):
        for i, (text, label) in enumerate(zip(frame["text"], frame["label"], strict=True)):
            polarity, rating = ("pos", 9) if label == 1 else ("neg", 2)
            path = root / split / polarity / f"{i}_{rating}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        (root / split / "urls_pos.txt").write_text("http://www.imdb.com/title/tt0000000/usercomments\n")
    (root / "train" / "unsup").mkdir()
    (root / "train" / "unsup" / "0_0.txt").write_text("an unlabelled review that must not be loaded")
    (root / "README").write_text("Large Movie Review Dataset v1.0")
    return root


def as_set(*parts: pd.DataFrame) -> set[tuple[str, int]]:
    frame = pd.concat(parts)
    return set(zip(frame["text"], frame["labels"].tolist(), strict=True))


def expected(frames) -> tuple[set, set]:
    train, test = frames
    return set(zip(train["text"], train["label"], strict=True)), set(zip(test["text"], test["label"], strict=True))


# --- formats ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_folder_formats_match_parquet_exactly(frames, tmp_path, suffix):
    for split, frame in zip(("train", "test"), frames, strict=True):
        write(frame, tmp_path / "parquet" / f"{split}.parquet")
        write(frame, tmp_path / "other" / f"{split}{suffix}")
    reference = load_splits(str(tmp_path / "parquet"), validation_split=0.25, seed=SEED)
    loaded = load_splits(str(tmp_path / "other"), validation_split=0.25, seed=SEED)
    for split in ("train", "validation", "test"):
        assert_frame_equal(getattr(loaded, split), getattr(reference, split))


def test_parquet_folder_keeps_every_review_with_its_label(frames, small_imdb):
    splits = load_splits(str(small_imdb), validation_split=0.25, seed=SEED)
    train, test = expected(frames)
    assert list(splits.train.columns) == ["text", "labels", "row"]
    assert as_set(splits.train, splits.validation) == train
    assert as_set(splits.test) == test
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (36, 12, 16)


@pytest.mark.parametrize("nested", [False, True], ids=["aclImdb", "parent-of-aclImdb"])
def test_acl_folder(frames, tmp_path, nested):
    root = write_acl(frames, tmp_path / "aclImdb")
    splits = load_splits(str(tmp_path if nested else root), validation_split=0.25, seed=SEED)
    train, test = expected(frames)
    assert as_set(splits.train, splits.validation) == train
    assert as_set(splits.test) == test


def test_acl_tarball(frames, tmp_path):
    root = write_acl(frames, tmp_path / "aclImdb")
    tarball = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(root, arcname="aclImdb")
    splits = load_splits(str(tarball), validation_split=0.25, seed=SEED)
    train, test = expected(frames)
    assert as_set(splits.train, splits.validation) == train
    assert as_set(splits.test) == test


def test_one_file_holds_out_a_stratified_fifth_as_test(frames, tmp_path):
    everything = pd.concat(frames, ignore_index=True)
    splits = load_splits(str(write(everything, tmp_path / "reviews.csv")), validation_split=0.25, seed=SEED)
    assert len(splits.test) == 13  # 20% of 64, rounded up as scikit-learn does
    assert abs(splits.test["labels"].mean() - 0.5) <= 1 / len(splits.test)
    assert as_set(splits.train, splits.validation, splits.test) == expected((everything, everything))[0]
    assert not as_set(splits.test) & as_set(splits.train, splits.validation)


def test_one_file_with_a_separate_test_file(frames, tmp_path):
    train_file = write(frames[0], tmp_path / "train.jsonl")
    test_file = write(frames[1], tmp_path / "held_out.csv")
    splits = load_splits(str(train_file), test_data=str(test_file), validation_split=0.25, seed=SEED)
    train, test = expected(frames)
    assert as_set(splits.train, splits.validation) == train
    assert as_set(splits.test) == test


def test_a_test_file_beside_a_data_set_with_splits_is_refused(frames, tmp_path):
    folder = tmp_path / "imdb"
    folder.mkdir()
    write(frames[0], folder / "train.csv")
    write(frames[1], folder / "test.csv")
    with pytest.raises(SentimentError, match="--test-data applies only when --data is one file"):
        load_splits(str(folder), test_data=str(write(frames[1], tmp_path / "held_out.csv")))


# --- labels ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("names", "label_map"), [
    ((0, 1), None),
    (("0", "1"), None),
    (("neg", "pos"), None),
    (("NEGATIVE", "Positive"), None),
    ((" negative ", "POSITIVE"), None),
    (("bad", "good"), "bad=0,good=1"),
    (("Bad", "GOOD"), "bad=0, good=1"),
], ids=str)
def test_label_names_map_to_0_and_1(frames, tmp_path, names, label_map):
    train, test = (f.assign(label=f["label"].map(dict(enumerate(names)))) for f in frames)
    write(train, tmp_path / "train.csv")
    write(test, tmp_path / "test.csv")
    splits = load_splits(str(tmp_path), label_map=label_map, validation_split=0.25, seed=SEED)
    expected_train, expected_test = expected(frames)
    assert as_set(splits.train, splits.validation) == expected_train
    assert as_set(splits.test) == expected_test


def test_map_labels_accepts_bools_and_integral_floats():
    assert map_labels(pd.Series([True, False, 1.0, 0.0]), "x", "label").tolist() == [1, 0, 1, 0]


@pytest.mark.parametrize("spec", ["bad:0", "bad=2", "=1", "bad=0,,good=1"])
def test_bad_label_map_is_reported_before_any_data_is_read(spec):
    with pytest.raises(SentimentError, match="--label-map"):
        load_splits("no-such-folder", label_map=spec)
    with pytest.raises(SentimentError, match="--label-map"):
        parse_label_map(spec)


# --- splits ----------------------------------------------------------------------------------------------------


def test_validation_is_stratified_seeded_and_never_from_test(frames, small_imdb):
    first = load_splits(str(small_imdb), validation_split=0.25, seed=SEED)
    again = load_splits(str(small_imdb), validation_split=0.25, seed=SEED)
    other = load_splits(str(small_imdb), validation_split=0.25, seed=SEED + 1)
    assert_frame_equal(first.validation, again.validation)
    assert_frame_equal(first.train, again.train)
    assert as_set(first.validation) != as_set(other.validation)
    assert first.validation["labels"].value_counts().to_dict() == {0: 6, 1: 6}
    train, test = expected(frames)
    assert as_set(first.validation) <= train
    assert not as_set(first.validation) & test
    assert not as_set(first.validation) & as_set(first.train)


def test_validation_grouped_by_movie_keeps_each_movie_on_one_side_and_says_when_it_could_not(frames, tmp_path):
    for split, frame in zip(("train", "test"), frames, strict=True):  # three reviews a movie; and no movie ids
        write(frame.assign(movie=[f"m{i // 3}" for i in range(len(frame))]), tmp_path / "movies" / f"{split}.parquet")
        write(frame, tmp_path / "none" / f"{split}.parquet")
    splits = load_splits(str(tmp_path / "movies"), validation_split=0.25, validation_grouping="movie", seed=SEED)
    assert splits.validation_grouping == "movie"
    assert not set(splits.train["movie"]) & set(splits.validation["movie"])
    fallback = load_splits(str(tmp_path / "none"), validation_split=0.25, validation_grouping="movie", seed=SEED)
    assert fallback.validation_grouping == "random"  # what train.py records, so that a rebuild holds out the same
    assert_frame_equal(fallback.validation, load_splits(str(tmp_path / "none"), validation_split=0.25,
                                                        validation_grouping="random", seed=SEED).validation)

def test_sample_limits_are_stratified_and_leave_test_apart(small_imdb):
    full = load_splits(str(small_imdb), validation_split=0.25, seed=SEED)
    small = load_splits(str(small_imdb), validation_split=0.25, seed=SEED, max_train_samples=10, max_eval_samples=6)
    assert (len(small.train), len(small.validation), len(small.test)) == (10, 6, 6)
    for split in ("train", "validation", "test"):
        part = getattr(small, split)
        assert part["labels"].value_counts().to_dict() == {0: len(part) // 2, 1: len(part) // 2}
        assert as_set(part) <= as_set(getattr(full, split))
    big = load_splits(str(small_imdb), validation_split=0.25, seed=SEED, max_train_samples=10_000)
    assert len(big.train) == len(full.train)


def test_splits_scikit_learn_cannot_make_say_what_to_change(frames, tmp_path):
    lopsided = pd.concat([frames[0][frames[0]["label"] == 0], frames[0][frames[0]["label"] == 1].head(1)])
    with pytest.raises(SentimentError, match="cannot hold out a stratified fifth .* --test-data"):
        load_splits(str(write(lopsided, tmp_path / "one_positive.csv")), seed=SEED)
    with pytest.raises(SentimentError, match="stratified sample of 4 of these .* leave the sample size out"):
        sample(lopsided.rename(columns={"label": "labels"}), 4, SEED)
    six = frames[0].groupby("label").head(3)
    with pytest.raises(SentimentError, match="--validation-split 0.05: cannot hold out that share"):
        load_splits(str(write(six, tmp_path / "six.csv")), validation_split=0.05, seed=SEED)


# --- hub -------------------------------------------------------------------------------------------------------


def test_hub_offline_says_how_to_use_a_local_copy(monkeypatch, tmp_path):
    import datasets
    import huggingface_hub.constants

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "1")
        monkeypatch.setattr(datasets.config, name, True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path, raising=False)
    monkeypatch.chdir(tmp_path)  # so that "imdb" is not also a folder name here
    with pytest.raises(SentimentError, match="could not load 'imdb'") as err:
        load_splits("imdb")
    assert "--data" in str(err.value) and "local copy" in str(err.value)


# --- bad inputs ------------------------------------------------------------------------------------------------


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SentimentError, match="no such file") as err:
        load_splits(str(tmp_path / "missing.csv"))
    assert "missing.csv" in str(err.value)


def test_missing_folder_or_unknown_name_is_named():
    with pytest.raises(SentimentError, match="'no-such-thing'"):
        load_splits("no-such-thing")


def test_folder_without_test_table_is_named(frames, tmp_path):
    write(frames[0], tmp_path / "train.parquet")
    with pytest.raises(SentimentError, match=r"no test\.parquet"):
        load_splits(str(tmp_path))


def test_missing_column_names_column_and_file(frames, tmp_path):
    path = write(frames[0].rename(columns={"text": "review"}), tmp_path / "reviews.csv")
    with pytest.raises(SentimentError, match="no column 'text'") as err:
        load_splits(str(path))
    assert "reviews.csv" in str(err.value) and "--text-column" in str(err.value)
    splits = load_splits(str(path), text_column="review")
    assert len(splits.train) + len(splits.validation) + len(splits.test) == len(frames[0])


def test_unknown_label_names_value_row_and_file(frames, tmp_path):
    train = frames[0].astype({"label": object})
    train.loc[5, "label"] = "meh"
    path = write(train, tmp_path / "labels.csv")
    with pytest.raises(SentimentError, match="'meh'") as err:
        load_splits(str(path))
    message = str(err.value)
    assert "labels.csv" in message and "'label'" in message and "row 5" in message and "--label-map" in message


def test_one_class_only_is_refused(frames, tmp_path):
    positives = frames[0][frames[0]["label"] == 1]
    write(positives, tmp_path / "train.parquet")
    write(frames[1], tmp_path / "test.parquet")
    with pytest.raises(SentimentError, match="only the positive class") as err:
        load_splits(str(tmp_path))
    assert "train" in str(err.value)


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_empty_text_names_the_row(frames, tmp_path, blank):
    train = frames[0].astype({"text": object})
    train.loc[3, "text"] = blank
    path = write(train, tmp_path / "empty.parquet")
    with pytest.raises(SentimentError, match="empty at row 3") as err:
        load_splits(str(path))
    assert "empty.parquet" in str(err.value)


def test_non_utf8_csv_is_named(tmp_path):
    path = tmp_path / "latin1.csv"
    rows = ["text,label"] + [f"Caf\xe9 review number {i},{i % 2}" for i in range(10)]
    path.write_bytes("\n".join(rows).encode("latin-1"))
    with pytest.raises(SentimentError, match="not valid UTF-8") as err:
        load_splits(str(path))
    assert "latin1.csv" in str(err.value)


def test_unreadable_tarball_is_named(tmp_path):
    path = tmp_path / "aclImdb_v1.tar.gz"
    path.write_bytes(b"not a tar archive")
    with pytest.raises(SentimentError, match="not a readable tar archive"):
        load_splits(str(path))


def test_jsonl_with_a_broken_line_is_named(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps({"text": "fine", "label": 1}) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(SentimentError, match="broken.jsonl"):
        load_splits(str(path))


def test_a_json_file_holds_an_array_of_records_or_json_lines(tmp_path):
    rows = [{"text": "a plot \u00e9", "label": 1}, {"text": "a cast", "label": 0}]
    array, lines = tmp_path / "array.json", tmp_path / "lines.json"
    array.write_text("\ufeff\n  " + json.dumps(rows, indent=1), encoding="utf-8")  # byte-order mark, white space
    lines.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for path in (array, lines):
        assert read_table(path).to_dict("records") == rows

def test_texts_of_one_file_are_all_its_rows_read_from_the_named_column(frames, tmp_path):
    """train.py carves the test split of one file itself, so the app's join needs every row, under the column the
    run was trained with."""
    path = write(frames[0].rename(columns={"text": "review"}), tmp_path / "reviews.csv")
    texts = texts_by_key(str(path), text_column="review")
    assert texts == {review_key(t): t for t in frames[0]["text"]}
    assert texts_by_key(str(path)) == texts  # "review" is found without being named
    other = write(frames[0].rename(columns={"text": "body"}), tmp_path / "other.csv")
    with pytest.raises(SentimentError, match="cannot tell which column holds the text") as err:
        texts_by_key(str(other))
    assert "body" in str(err.value) and "--text-column" in str(err.value)

