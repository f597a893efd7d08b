"""Where review data comes from: the hub, an aclImdb folder or tarball, a folder of split files, or one file.
Each reader returns raw frames by split, as the source has them; data.py checks and maps them."""

from __future__ import annotations

import hashlib
import logging
import re
import tarfile
from pathlib import Path

import pandas as pd

from sentiment.errors import SentimentError

log = logging.getLogger(__name__)

HUB_ALIASES = {"imdb": "stanfordnlp/imdb", "stanfordnlp/imdb": "stanfordnlp/imdb"}
FILE_SUFFIXES = (".parquet", ".csv", ".jsonl", ".json")
MOVIE_IDS = "movie_ids.parquet"  # IMDB's (split, label, id) -> imdb_title, beside the split files
ACL_FILE = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|<br\s*/?>", re.IGNORECASE)  # IMDB's reviews break lines with <br />


def review_key(text: str) -> str:
    """A stable key of a review that does not reveal its text: the first 16 hex digits of its sha256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def sentences(text: str) -> list[str]:
    """The sentences of a review, stripped (a line break is a sentence break): what crops and mined sentences are
    cut from."""
    return [s.strip() for s in SENTENCE_BREAK.split(text) if s and s.strip()]


def _starts_with(path: Path, prefix: bytes) -> bool:
    """Whether the file's first bytes other than white space (and a UTF-8 byte-order mark) are `prefix`."""
    with path.open("rb") as handle:
        head = handle.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
    return head.startswith(prefix)


def read_table(path: Path) -> pd.DataFrame:
    """Read one Parquet, CSV or JSON file (JSON Lines, or an array of records in .json) with a clear error for
    anything else."""
    if not path.exists():
        raise SentimentError(f"{path}: no such file; check the path given to --data")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path, encoding="utf-8-sig")  # -sig: a byte-order mark (Excel) is dropped
        if suffix in (".jsonl", ".json"):  # a .json file may hold one array of records or JSON Lines
            return pd.read_json(path, lines=suffix == ".jsonl" or not _starts_with(path, b"["),
                                encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise SentimentError(f"{path}: not valid UTF-8 (byte {err.start}); save it as UTF-8 and try again") from err
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise SentimentError(f"{path}: could not be read as {suffix[1:]} ({err})") from err
    raise SentimentError(f"{path}: unsupported file type {suffix!r}; use .parquet, .csv, .jsonl or .json")


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


def split_file(folder: Path, split: str) -> Path | None:
    """The table file of one split in a folder (train.parquet, test.csv, ...), in FILE_SUFFIXES order."""
    return next((folder / f"{split}{s}" for s in FILE_SUFFIXES if (folder / f"{split}{s}").exists()), None)


def load_folder(path: Path) -> dict[str, pd.DataFrame]:
    """A folder of train.* and test.* tables, or the original aclImdb layout."""
    if (path / "train" / "pos").is_dir() or (path / "aclImdb").is_dir():
        return load_acl_folder(path)
    found = {}
    for split in ("train", "test"):
        table = split_file(path, split)
        if table is None:
            raise SentimentError(f"{path}: no {split}.parquet, {split}.csv or {split}.jsonl here, and it is not an "
                                 f"aclImdb folder")
        found[split] = read_table(table)
    return found


def load_raw(data: str, test_data: str | None = None) -> tuple[dict[str, pd.DataFrame], str]:
    """Raw frames by split, and a description of where they came from. `test_data` is the test split of one file
    given as `data`; a data set with splits of its own refuses it rather than ignore it."""
    path = Path(data).expanduser()
    has_splits = ((data in HUB_ALIASES and not path.exists()) or path.is_dir()
                  or path.name.endswith((".tar.gz", ".tgz", ".tar")))
    if has_splits and test_data is not None:
        raise SentimentError(f"--test-data applies only when --data is one file, and {data!r} has a test split of its "
                             f"own: leave --test-data out, or give the training reviews as one file")
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


def add_movies(data: str, raw: dict[str, pd.DataFrame]) -> None:
    """Add a `movie` column to each split of an IMDB folder that has movie_ids.parquet beside its files (joined on
    split, label and id); other data is left as it is."""
    path = Path(data).expanduser() / MOVIE_IDS
    if not path.is_file():
        return
    movies = read_table(path)
    for split, frame in raw.items():
        if not {"label", "id"} <= set(frame.columns) or "movie" in frame.columns:
            continue
        own = movies[movies["split"] == split].set_index(["label", "id"])["imdb_title"]
        index = pd.MultiIndex.from_arrays([frame["label"].astype(own.index.levels[0].dtype),
                                           frame["id"].astype(own.index.levels[1].dtype)])
        frame["movie"] = own.reindex(index).to_numpy()
        missing = int(frame["movie"].isna().sum())
        if missing:
            log.warning("%s: %d %s reviews have no movie id", path, missing, split)
