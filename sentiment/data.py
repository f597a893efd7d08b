"""Turn raw review tables into checked frames: find the columns, map the labels, carry row ids and metadata, and
split train/validation/test (validation grouped by movie where the data says which movie a review is about)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from sentiment.artifacts import sha256_file
from sentiment.config import OWN_SPLITS, VALIDATION_SENTENCES, TrainConfig, stored_setting
from sentiment.errors import SentimentError
from sentiment.sources import add_movies, load_raw, read_table, review_key, sentences, split_file

log = logging.getLogger(__name__)

KNOWN_LABELS = {"0": 0, "1": 1, "neg": 0, "pos": 1, "negative": 0, "positive": 1, "false": 0, "true": 1}
TEXT_COLUMNS = ("text", "review", "sentence", "content")
LABEL_COLUMNS = ("label", "labels", "sentiment", "polarity")
# Metadata carried into keyed predictions for error cohorts: numbers, flags and short codes, never free text. A
# code is short and either one word ("tt0069089", "US") or one of few values ("Home & Kitchen"): a column of short
# distinct phrases (titles, one-line reviews) is text and stays out of the stored predictions.
MAX_METADATA_CHARS = 40
MAX_CATEGORIES = 50
MOVIE_COLUMNS = ("movie", "movie_id")  # which movie a review is about: validation keeps each movie on one side


@dataclass
class Splits:
    """Train, validation and test frames: `text`, `labels` (0 negative, 1 positive), `row` (the row in its source
    split) and any metadata columns the source has."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    source: str
    validation_grouping: str = "random"  # as held out: "movie" falls back to "random" where movie ids are missing


@dataclass
class Labelled:
    """One labelled evaluation set, checked, with where it came from."""

    frame: pd.DataFrame
    source: str
    sha256: str | None  # of the file, where the data is one file


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


def _label_key(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer, float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip().lower()


def map_labels(values: pd.Series, source: str, column: str, label_map: dict[str, int] | None = None) -> np.ndarray:
    """Map 0/1, neg/pos, negative/positive, true/false (any case) or an explicit map to 0/1; anything else is an
    error that lists the values found."""
    mapping = label_map or KNOWN_LABELS
    keys = values.map(_label_key)
    mapped = keys.map(mapping)
    unknown = keys[mapped.isna()]
    if len(unknown):
        found = ", ".join(repr(v) for v in keys.value_counts().index[:8])
        raise SentimentError(f"{source}: column {column!r} holds labels that map to neither class (values found: "
                             f"{found}; first unknown {unknown.iloc[0]!r} at row {int(unknown.index[0])}); use 0/1, "
                             f"neg/pos, negative/positive or true/false, or pass --label-map such as 'bad=0,good=1'")
    return mapped.astype(np.int64).to_numpy()


def _name_words(name: object) -> set[str]:
    """The words of a column name, lower-cased: "Review Text", "review_text" and "reviewText" give {review, text}."""
    return set(re.findall(r"[a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name)).lower()))


def candidate_columns(frame: pd.DataFrame, candidates: tuple[str, ...], what: str) -> list:
    """The columns named one of `candidates` (any case); failing that, those with one of them as a word of their
    name ("Review Text", "sentiment_label"), for text only columns that hold strings (not "review_id")."""
    exact = [c for c in frame.columns if str(c).lower() in candidates]
    if exact:
        return exact
    found = [c for c in frame.columns if _name_words(c) & set(candidates)]
    if what == "text":
        found = [c for c in found if pd.api.types.is_string_dtype(frame[c]) or frame[c].dtype == object]
    return found


def find_column(frame: pd.DataFrame, given: str | None, candidates: tuple[str, ...], what: str, source: str,
                how: str | None = None) -> str:
    """The named column, or the one column among `candidates` when exactly one is present (`candidate_columns`);
    `how` says in the error how to name it (default: the --text-column or --label-column flag)."""
    columns = ", ".join(map(str, frame.columns))
    how = how or f"--{what}-column"
    if given is not None:
        if given not in frame.columns:
            raise SentimentError(f"{source}: no column {given!r} (columns: {columns}); name the {what} column with "
                                 f"{how}")
        return given
    found = candidate_columns(frame, candidates, what)
    if len(found) == 1:
        return found[0]
    why = f"several candidates ({', '.join(map(str, found))})" if found else f"none named {'/'.join(candidates)}"
    raise SentimentError(f"{source}: cannot tell which column holds the {what}: {why} among its columns ({columns}); "
                         f"name it with {how}")


def _metadata(frame: pd.DataFrame, skip: set[str]) -> pd.DataFrame:
    keep = {}
    for column in frame.columns:
        if column in skip or str(column) in ("text", "labels", "row", "key"):
            continue
        values = frame[column]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            keep[str(column)] = values.to_numpy()
        elif values.map(lambda v: isinstance(v, str) and len(v) <= MAX_METADATA_CHARS).all() and (
                not values.str.contains(r"\s").any() or values.nunique() <= MAX_CATEGORIES):
            keep[str(column)] = values.astype(str).to_numpy()
    return pd.DataFrame(keep)


def normalise(frame: pd.DataFrame, source: str, text_column: str | None = "text", label_column: str | None = "label",
              label_map: dict[str, int] | None = None) -> pd.DataFrame:
    """Check columns, texts and labels; return `text`, `labels`, `row` and the source's metadata columns."""
    text_column = find_column(frame, text_column, TEXT_COLUMNS, "text", source)
    label_column = find_column(frame, label_column, LABEL_COLUMNS, "label", source)
    if frame.empty:
        raise SentimentError(f"{source}: has no rows; give a file with at least one labelled review")
    frame = frame.reset_index(drop=True)
    texts = frame[text_column]
    empty = texts.isna() | texts.astype(str).str.replace("\x00", "").str.strip().eq("")
    if empty.any():
        raise SentimentError(f"{source}: column {text_column!r} is empty at row {int(np.flatnonzero(empty)[0])} "
                             f"({int(empty.sum())} empty texts in all); remove those rows")
    labels = map_labels(frame[label_column], source, label_column, label_map)
    checked = pd.DataFrame({"text": texts.astype(str), "labels": labels, "row": np.arange(len(frame))})
    return pd.concat([checked, _metadata(frame, {text_column, label_column})], axis=1)


def require_both_classes(frame: pd.DataFrame, source: str) -> None:
    present = set(frame["labels"].unique().tolist())
    if present != {0, 1}:
        raise SentimentError(f"{source}: has only the {'positive' if 1 in present else 'negative'} class; "
                             f"training and evaluation need both negative and positive reviews")


def sample(frame: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """A stratified sample of `n` rows (all of them when n is None or not smaller)."""
    if n is None or n >= len(frame):
        return frame.reset_index(drop=True)
    try:
        kept, _ = train_test_split(frame, train_size=n, stratify=frame["labels"], random_state=seed)
    except ValueError as err:  # scikit-learn's: a label with one review, or a sample too small for both labels
        raise SentimentError(f"a stratified sample of {n} of these {len(frame)} rows is not possible ({err}); "
                             f"ask for more, or leave the sample size out") from None
    return kept.reset_index(drop=True)


def split_validation(train: pd.DataFrame, share: float, seed: int,
                     groups: pd.Series | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out `share` of `train`, stratified by label; with `groups`, every group lies on one side only."""
    try:
        if groups is None:
            return train_test_split(train, test_size=share, random_state=seed, stratify=train["labels"])
        n_folds = max(2, round(1 / share))
        folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        keep, held = next(folds.split(train, train["labels"], groups))
        if abs(1 / n_folds - share) > 0.01:
            log.warning("--validation-split %g grouped by movie holds out one fold of %d: %.1f %% of the training "
                        "reviews", share, n_folds, 100 * len(held) / len(train))
    except ValueError as err:  # scikit-learn's: too few reviews (or movies) to hold out a share of each label
        raise SentimentError(f"--validation-split {share}: cannot hold out that share of {len(train)} training "
                             f"reviews ({err}); give more training data or another --validation-split") from None
    return train.iloc[keep], train.iloc[held]


def load_splits(data: str, *, test_data: str | None = None, text_column: str = "text", label_column: str = "label",
                label_map: str | None = None, validation_split: float = 0.1, validation_grouping: str = "random",
                max_train_samples: int | None = None, max_eval_samples: int | None = None, seed: int = 42) -> Splits:
    """Train/validation/test frames; validation is carved from train (seeded), never from test."""
    mapping = parse_label_map(label_map)  # a typo in the flag should not wait for the data to load
    raw, source = load_raw(data, test_data)
    add_movies(data, raw)
    frames = {split: normalise(frame, f"{source} [{split}]", text_column, label_column, mapping)
              for split, frame in raw.items()}
    if "test" not in frames:
        require_both_classes(frames["train"], source)
        try:
            frames["train"], frames["test"] = train_test_split(frames["train"], test_size=0.2, random_state=seed,
                                                               stratify=frames["train"]["labels"])
        except ValueError as err:  # scikit-learn's: a label with a single review
            raise SentimentError(f"{source}: cannot hold out a stratified fifth as the test split ({err}); give "
                                 f"more reviews of each label, or a test file with --test-data") from None
    for split, frame in frames.items():
        require_both_classes(frame, f"{source} [{split}]")
    groups = None
    if validation_grouping == "movie":
        column = next((c for c in MOVIE_COLUMNS if c in frames["train"]), None)
        if column is not None and frames["train"][column].notna().all():
            groups = frames["train"][column].to_numpy()
        else:
            log.warning("no movie id for every review of %s: validation is a stratified random split instead", source)
    train, validation = split_validation(frames["train"], validation_split, seed, groups)
    splits = Splits(train=sample(train, max_train_samples, seed), validation=sample(validation, max_eval_samples, seed),
                    test=sample(frames["test"], max_eval_samples, seed), source=source,
                    validation_grouping="movie" if groups is not None else "random")
    log.info("data %s: %d train, %d validation (%s), %d test reviews", source, len(splits.train),
             len(splits.validation), "grouped by movie" if groups is not None else "random", len(splits.test))
    return splits


def config_splits(config: TrainConfig | dict) -> Splits:
    """The train/validation/test splits a config describes (a TrainConfig, or one stored with a model folder,
    whose missing fields mean what they meant when it was written)."""
    def get(name: str):
        return stored_setting(config, name) if isinstance(config, dict) else getattr(config, name)

    return load_splits(get("data"), test_data=get("test_data"), text_column=get("text_column"),
                       label_column=get("label_column"), label_map=get("label_map"),
                       validation_split=get("validation_split"), validation_grouping=get("validation_grouping"),
                       max_train_samples=get("max_train_samples"), max_eval_samples=get("max_eval_samples"),
                       seed=get("seed"))


def load_labelled(data: str, split: str = "test", text_column: str | None = None, label_column: str | None = None,
                  label_map: str | None = None, max_samples: int | None = None, seed: int = 42) -> Labelled:
    """One labelled set to evaluate on: a split of a data set with splits, or every row of one file."""
    mapping = parse_label_map(label_map)
    raw, source = load_raw(data)
    add_movies(data, raw)
    if split not in raw:
        if len(raw) > 1 or Path(data).expanduser().is_dir():
            raise SentimentError(f"{source}: has no {split!r} split (it has {', '.join(raw)}); pick one with --split")
        split = next(iter(raw))
    frame = normalise(raw[split], source if len(raw) == 1 else f"{source} [{split}]", text_column, label_column,
                      mapping)
    require_both_classes(frame, source)
    path = Path(data).expanduser()
    return Labelled(sample(frame, max_samples, seed), source if len(raw) == 1 else f"{source} [{split}]",
                    sha256_file(path) if path.is_file() else None)


def texts_by_key(data: str, split: str = "test", text_column: str | None = None) -> dict[str, str]:
    """Texts of one split keyed by `review_key`, to join onto keyed predictions (which hold no text).

    A folder needs only that split's file: the app serves test texts without the training data. One table file
    has no splits (its rows are all keyed, and the join keeps those the predictions name). A training run's own
    validation reviews (evaluate.py --split validation) are read from the train split they were held out of, and
    the sentences cut from them (--split validation-sentences) from that split's reviews cut into sentences."""
    path = Path(data).expanduser()
    # no data set here has a validation split: train.py holds it out of train
    wanted = "train" if split in OWN_SPLITS else split
    table = split_file(path, wanted) if path.is_dir() else None
    if table is not None:
        frame, source = read_table(table), str(table)
    else:
        raw, source = load_raw(data)
        if wanted not in raw and len(raw) > 1:
            raise SentimentError(f"{source}: has no {wanted} split")
        frame = raw[wanted] if wanted in raw else next(iter(raw.values()))
    column = find_column(frame, text_column if text_column in frame.columns else None, TEXT_COLUMNS, "text", source)
    texts = frame[column].astype(str)
    if split == VALIDATION_SENTENCES:  # a set's sentences are among every sentence of the reviews it was cut from
        return {review_key(s): s for text in texts for s in sentences(text)}
    return {review_key(t): t for t in texts}
