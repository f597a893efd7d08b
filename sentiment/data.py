"""Load IMDB-style review data from the hub or local files, map labels, and split it."""

from __future__ import annotations

import hashlib
import logging
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from sentiment.config import TrainConfig
from sentiment.errors import SentimentError

log = logging.getLogger(__name__)

HUB_ALIASES = {"imdb": "stanfordnlp/imdb", "stanfordnlp/imdb": "stanfordnlp/imdb"}
FILE_SUFFIXES = (".parquet", ".csv", ".jsonl", ".json")
KNOWN_LABELS = {"0": 0, "1": 1, "neg": 0, "pos": 1, "negative": 0, "positive": 1}
ACL_FILE = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")


@dataclass
class Splits:
    """Train, validation and test frames, each with columns `text` and `labels` (0 negative, 1 positive)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def review_key(text: str) -> str:
    """A stable key of a review that does not reveal its text: the first 16 hex digits of its sha256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def parse_label_map(spec: str | None) -> dict[str, int] | None:
    """'bad=0,good=1' -> {'bad': 0, 'good': 1} (keys compared case-insensitively)."""
    if spec is None:
        return None
    mapping = {}
    for part in spec.split(","):
        name, sep, value = part.partition("=")
        if not sep or value.strip() not in ("0", "1") or not name.strip():
            raise SentimentError(f"--label-map: {part!r} is not NAME=0 or NAME=1; write e.g. 'bad=0,good=1'")
        mapping[name.strip().lower()] = int(value)
    return mapping


def map_labels(values: pd.Series, source: str, column: str, label_map: dict[str, int] | None = None) -> np.ndarray:
    """Map 0/1, neg/pos, negative/positive (any case) or an explicit map to 0/1; unknown values are an error."""
    mapping = label_map or KNOWN_LABELS
    keys = values.map(lambda v: str(int(v)) if isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating))
                      and float(v).is_integer() else str(v).strip()).str.lower()
    mapped = keys.map(mapping)
    unknown = keys[mapped.isna()]
    if len(unknown):
        row = int(unknown.index[0])
        shown = ", ".join(repr(v) for v in unknown.unique()[:5])
        raise SentimentError(f"{source}: column {column!r} has labels {shown} (first at row {row}) that map to neither "
                             f"class; use 0/1, neg/pos, negative/positive, or pass --label-map such as 'bad=0,good=1'")
    return mapped.astype(np.int64).to_numpy()


def read_table(path: Path) -> pd.DataFrame:
    """Read one Parquet, CSV or JSONL file with a clear error for anything else."""
    if not path.exists():
        raise SentimentError(f"{path}: no such file; check the path given to --data")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path, encoding="utf-8")
        if suffix in (".jsonl", ".json"):
            return pd.read_json(path, lines=True, encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SentimentError(f"{path}: not valid UTF-8 (byte {err.start}); save it as UTF-8 and try again") from err
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise SentimentError(f"{path}: could not be read as {suffix[1:]} ({err})") from err
    raise SentimentError(f"{path}: unsupported file type {suffix!r}; use .parquet, .csv or .jsonl")


def normalise(frame: pd.DataFrame, source: str, text_column: str = "text", label_column: str = "label",
              label_map: dict[str, int] | None = None) -> pd.DataFrame:
    """Check columns, texts and labels; return a frame with exactly `text` and `labels`."""
    for column in (text_column, label_column):
        if column not in frame.columns:
            raise SentimentError(f"{source}: no column {column!r} (columns: {', '.join(map(str, frame.columns))}); "
                                 f"name the right one with --{'text' if column == text_column else 'label'}-column")
    if frame.empty:
        raise SentimentError(f"{source}: has no rows")
    texts = frame[text_column].reset_index(drop=True)
    empty = texts.isna() | (texts.astype(str).str.strip() == "")
    if empty.any():
        raise SentimentError(f"{source}: column {text_column!r} is empty at row {int(np.flatnonzero(empty)[0])} "
                             f"({int(empty.sum())} empty texts in all); remove those rows")
    labels = map_labels(frame[label_column].reset_index(drop=True), source, label_column, label_map)
    return pd.DataFrame({"text": texts.astype(str), "labels": labels})


def _require_both_classes(frame: pd.DataFrame, source: str) -> None:
    present = set(frame["labels"].unique().tolist())
    if present != {0, 1}:
        raise SentimentError(f"{source}: has only the {'positive' if 1 in present else 'negative'} class; "
                             f"training and evaluation need both negative and positive reviews")


def load_hub(name: str) -> dict[str, pd.DataFrame]:
    """The hub dataset (stanfordnlp/imdb) through `datasets`; offline, a clear message on what to do instead."""
    import datasets

    try:
        loaded = datasets.load_dataset(HUB_ALIASES.get(name, name))
    except Exception as err:  # the hub client raises many types for "offline"
        raise SentimentError(f"could not load {name!r} from the Hugging Face hub ({type(err).__name__}: {err}). "
                             f"Without internet, point --data at a local copy: a folder of train/test Parquet "
                             f"files, an aclImdb folder or aclImdb_v1.tar.gz") from err
    return {split: loaded[split].to_pandas() for split in ("train", "test") if split in loaded}


def _acl_frames(entries: list[tuple[str, bytes]], source: str) -> dict[str, pd.DataFrame]:
    rows: dict[str, list] = {"train": [], "test": []}
    for name, payload in entries:
        match = ACL_FILE.search(name)
        if match:
            split, polarity = match.group(1), match.group(2)
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError as err:
                raise SentimentError(f"{source}: {name} is not valid UTF-8") from err
            rows[split].append((text, polarity))
    if not rows["train"] or not rows["test"]:
        raise SentimentError(f"{source}: found no train/{{pos,neg}}/*.txt and test/{{pos,neg}}/*.txt review files; "
                             f"is this the aclImdb folder?")
    return {split: pd.DataFrame(r, columns=["text", "label"]) for split, r in rows.items()}


def load_acl_folder(path: Path) -> dict[str, pd.DataFrame]:
    files = sorted(p for p in path.rglob("*.txt") if ACL_FILE.search(p.as_posix()))
    return _acl_frames([(p.relative_to(path).as_posix(), p.read_bytes()) for p in files], str(path))


def load_acl_tarball(path: Path) -> dict[str, pd.DataFrame]:
    entries = []
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile() and ACL_FILE.search(member.name):
                    entries.append((member.name, tar.extractfile(member).read()))
    except tarfile.TarError as err:
        raise SentimentError(f"{path}: not a readable tar archive ({err})") from err
    return _acl_frames(entries, str(path))


def _split_file(folder: Path, split: str) -> Path | None:
    """The table file of one split in a folder (train.parquet, test.csv, ...), in FILE_SUFFIXES order."""
    return next((folder / f"{split}{s}" for s in FILE_SUFFIXES if (folder / f"{split}{s}").exists()), None)


def load_folder(path: Path) -> dict[str, pd.DataFrame]:
    """A folder of train.* and test.* tables, or the original aclImdb layout."""
    if (path / "train" / "pos").is_dir() or (path / "aclImdb").is_dir():
        return load_acl_folder(path)
    found = {}
    for split in ("train", "test"):
        table = _split_file(path, split)
        if table is None:
            raise SentimentError(f"{path}: no {split}.parquet, {split}.csv or {split}.jsonl here, and it is not an "
                                 f"aclImdb folder")
        found[split] = read_table(table)
    return found


def load_raw(data: str, test_data: str | None = None) -> tuple[dict[str, pd.DataFrame], str]:
    """Raw frames by split, and a description of where they came from."""
    path = Path(data).expanduser()
    if data in HUB_ALIASES and not path.exists():
        return load_hub(data), HUB_ALIASES[data]
    if path.is_dir():
        return load_folder(path), str(path)
    if path.name.endswith((".tar.gz", ".tgz", ".tar")):
        if not path.exists():
            raise SentimentError(f"{path}: no such file; check the path given to --data")
        return load_acl_tarball(path), str(path)
    if path.suffix.lower() in FILE_SUFFIXES or path.exists():
        frames = {"train": read_table(path)}
        if test_data is not None:
            frames["test"] = read_table(Path(test_data).expanduser())
        return frames, str(path)
    raise SentimentError(f"--data {data!r}: no such file or folder, and not a known hub dataset; give 'imdb', a folder "
                         f"of train/test files, an aclImdb folder or tarball, or one CSV/JSONL/Parquet file")


def _sample(frame: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    if n is None or n >= len(frame):
        return frame.reset_index(drop=True)
    sample, _ = train_test_split(frame, train_size=n, stratify=frame["labels"], random_state=seed)
    return sample.reset_index(drop=True)


def load_splits(data: str, *, test_data: str | None = None, text_column: str = "text", label_column: str = "label",
                label_map: str | None = None, validation_split: float = 0.1, max_train_samples: int | None = None,
                max_eval_samples: int | None = None, seed: int = 42) -> Splits:
    """Train/validation/test frames; validation is carved from train (stratified, seeded), never from test."""
    mapping = parse_label_map(label_map)  # a typo in the flag should not wait for the data to load
    raw, source = load_raw(data, test_data)
    frames = {split: normalise(frame, f"{source} [{split}]", text_column, label_column, mapping)
              for split, frame in raw.items()}
    if "test" not in frames:
        frames["train"], frames["test"] = train_test_split(frames["train"], test_size=0.2, random_state=seed,
                                                           stratify=_stratify(frames["train"], source))
    for split, frame in frames.items():
        _require_both_classes(frame, f"{source} [{split}]")
    train, validation = train_test_split(frames["train"], test_size=validation_split, random_state=seed,
                                         stratify=frames["train"]["labels"])
    splits = Splits(train=_sample(train, max_train_samples, seed),
                    validation=_sample(validation, max_eval_samples, seed),
                    test=_sample(frames["test"], max_eval_samples, seed))
    log.info("data %s: %d train, %d validation, %d test reviews", source, len(splits.train), len(splits.validation),
             len(splits.test))
    return splits


def config_splits(config: TrainConfig) -> Splits:
    """The train/validation/test splits a config describes; the same for training and --fairness-only."""
    return load_splits(config.data, test_data=config.test_data, text_column=config.text_column,
                       label_column=config.label_column, label_map=config.label_map,
                       validation_split=config.validation_split, max_train_samples=config.max_train_samples,
                       max_eval_samples=config.max_eval_samples, seed=config.seed)


def _stratify(frame: pd.DataFrame, source: str) -> pd.Series:
    _require_both_classes(frame, source)
    return frame["labels"]



def texts_by_key(data: str, split: str = "test", text_column: str = "text") -> dict[str, str]:
    """Review texts of one split keyed by `review_key`, to join onto keyed predictions (which hold no text).

    A folder needs only that split's file: the app serves test texts without the training data. One table file
    has no splits (train.py carved its test split from it, or it is the --test-data file): all its rows are
    keyed, and the join keeps those the predictions name."""
    path = Path(data).expanduser()
    table = _split_file(path, split) if path.is_dir() else None
    if table is not None:
        frame, source = read_table(table), str(table)
    else:
        raw, source = load_raw(data)
        if split not in raw and len(raw) > 1:
            raise SentimentError(f"{source}: has no {split} split")
        frame = raw[split] if split in raw else raw["train"]
    column = text_column if text_column in frame.columns else "text"
    if column not in frame.columns:
        raise SentimentError(f"{source}: no column {text_column!r} (the training run's --text-column) holds the "
                             f"review texts (columns: {', '.join(map(str, frame.columns))}); give the data the model "
                             f"was trained on")
    return {review_key(t): t for t in frame[column].astype(str)}
