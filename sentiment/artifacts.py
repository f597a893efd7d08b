"""Save and load a trained model with its evaluation: one folder, written atomically, with a manifest."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from sentiment.errors import SentimentError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
TRAINING_CONFIG = "training_config.json"
HISTORY = "history.json"
FAIRNESS = "fairness.json"
BEHAVIOUR = "behaviour.json"
CALIBRATION = "calibration.json"
ENGINE_INFO = "engine.json"  # the int8 engine's verification (sentiment.engine)
# One folder per evaluation set: evaluations/<name>/{evaluation.json, metrics.json, predictions.parquet}.
EVALUATIONS = "evaluations"
EVALUATION_INFO = "evaluation.json"
METRICS = "metrics.json"
PREDICTIONS = "predictions.parquet"
COHORTS = "cohorts.json"
MISLEADING_WORDS = "misleading_words.json"
TEST_EVALUATION = "test"  # the name train.py gives the evaluation on its own test split
FORMAT_VERSION = 2


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk, so that a rename after it survives a power loss with
    the content it names. Windows cannot open a folder for this, and needs it less: there it skips folders."""
    if os.name == "nt" and path.is_dir():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, payload: Any) -> None:
    """Write JSON through a temporary file, flushed to disk, and a rename, so a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    fsync_path(tmp)
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def check_writable(output_dir: str | Path, flag: str = "--output-dir") -> Path:
    """Fail before an hour of training, not after it, when the output location cannot be written."""
    output_dir = Path(output_dir).resolve()
    parent = output_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".write-test-"):
            pass
    except OSError as err:
        raise SentimentError(f"cannot write to {parent} ({err.strerror}); choose another {flag}") from err
    return output_dir


def write_manifest(folder: Path) -> dict:
    files = {p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    manifest = {"format": FORMAT_VERSION, "files": files}
    write_json(folder / MANIFEST, manifest)
    return manifest


def verify_manifest(folder: str | Path) -> dict:
    """Check every file the manifest lists; name the first one missing or altered."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise SentimentError(f"{folder}: no {MANIFEST}; this is not a complete artifacts folder (train one with "
                             f"train.py or restore it from git)")
    manifest = read_json(folder / MANIFEST)
    for name, entry in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise SentimentError(f"{folder}: {name} is missing; the artifacts are incomplete, restore or retrain them")
        if sha256_file(path) != entry["sha256"]:
            raise SentimentError(f"{folder}: {name} does not match its sha256 in {MANIFEST}; it was altered or "
                                 f"half-written, restore or retrain the artifacts")
    return manifest


def _make_readable(folder: Path) -> None:
    """mkdtemp and some writers create owner-only files; artifacts are meant to be shared and served."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


@contextlib.contextmanager
def _only_writer(output_dir: Path) -> Iterator[None]:
    """One writer of a folder at a time (train.py, evaluate.py runs), so that no one's swap drops another's
    change; a second writer waits. The lock is a hidden file beside the folder (`.NAME.lock`, kept: removing it
    would race a waiting writer); without fcntl (Windows) there is no lock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(output_dir.with_name(f".{output_dir.name}.lock"), "a") as lock:  # closing it releases the lock
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is writing %s; waiting for it to finish", output_dir)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _recover(output_dir: Path) -> None:
    """A writer killed between its two renames left the previous folder as `.NAME.old-PID` and no NAME: put it
    back before anything else is written."""
    if output_dir.exists():
        return
    for old in sorted(output_dir.parent.glob(f".{output_dir.name}.old-*")):
        if (old / MANIFEST).is_file():
            os.replace(old, output_dir)
            log.warning("restored %s from %s, left by a writer killed while swapping it", output_dir, old.name)
            return


@contextlib.contextmanager
def staged(output_dir: str | Path) -> Iterator[Path]:
    """A temporary sibling folder to fill; on leaving the block without an error it gets its manifest, is flushed
    to disk and is swapped into place of `output_dir`.

    The previous folder is only removed once the new one is complete, so a crash at any point leaves
    either the old artifacts or the new ones, never a mixture (a crash between the two renames leaves the old
    ones under a hidden name, put back by the next writer).
    """
    output_dir = check_writable(output_dir)
    with _only_writer(output_dir):
        _recover(output_dir)
        with _swapped_in(output_dir) as tmp:
            yield tmp
    log.info("artifacts written to %s", output_dir)


@contextlib.contextmanager
def _swapped_in(output_dir: Path) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}.tmp-"))
    old = None
    try:
        yield tmp
        write_manifest(tmp)
        _make_readable(tmp)
        for path in [*tmp.rglob("*"), tmp]:
            fsync_path(path)
        if output_dir.exists():
            old = output_dir.with_name(f".{output_dir.name}.old-{os.getpid()}")
            os.replace(output_dir, old)
        os.replace(tmp, output_dir)
        fsync_path(output_dir.parent)
    except BaseException:
        if old is not None and not output_dir.exists():
            os.replace(old, output_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def save_atomically(output_dir: str | Path, write: Callable[[Path], None]) -> Path:
    """Let `write` fill a staging folder that then replaces `output_dir` (see `staged`)."""
    with staged(output_dir) as folder:
        write(folder)
    return Path(output_dir).resolve()  # checked writable before staging; a second probe could fail after the swap


def update_atomically(folder: str | Path, write: Callable[[Path], None]) -> Path:
    """Add or replace files of a complete artifacts folder: a verified copy is changed, then swapped in."""
    verify_manifest(folder)

    def copy_then_write(tmp: Path) -> None:
        shutil.copytree(folder, tmp, dirs_exist_ok=True, ignore=lambda _, names: [n for n in names if n == MANIFEST])
        write(tmp)

    return save_atomically(folder, copy_then_write)


def write_evaluation(folder: Path, name: str, info: dict, metrics: dict, predictions: pd.DataFrame,
                     cohorts: list[dict], misleading_words: dict | None = None) -> Path:
    """Write one evaluation set into a folder being built (a staging folder, or update_atomically's copy)."""
    target = folder / EVALUATIONS / name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    write_json(target / EVALUATION_INFO, info)
    write_json(target / METRICS, metrics)
    write_json(target / COHORTS, cohorts)
    if misleading_words is not None:
        write_json(target / MISLEADING_WORDS, misleading_words)
    predictions.to_parquet(target / PREDICTIONS, index=False)
    return target


def evaluation_names(folder: str | Path) -> list[str]:
    """The evaluation sets stored in a folder: train.py's test set first, then by name."""
    root = Path(folder) / EVALUATIONS
    names = sorted(p.name for p in root.iterdir() if (p / METRICS).is_file()) if root.is_dir() else []
    return sorted(names, key=lambda n: (n != TEST_EVALUATION, n))


def load_evaluation_set(folder: str | Path, name: str) -> dict[str, Any]:
    target = Path(folder) / EVALUATIONS / name
    return {"name": name, "info": read_json(target / EVALUATION_INFO), "metrics": read_json(target / METRICS),
            "predictions": pd.read_parquet(target / PREDICTIONS),
            "cohorts": pd.DataFrame(read_json(target / COHORTS)) if (target / COHORTS).is_file() else None,
            "misleading_words": read_json(target / MISLEADING_WORDS) if (target / MISLEADING_WORDS).is_file()
            else None}


def load_report(folder: str | Path) -> dict[str, Any]:
    """Everything a folder says about its model: training config and history, calibration, fairness and
    behavioural reports, the int8 engine's verification, and every evaluation set
    (name -> info, metrics, predictions, cohorts, words)."""
    folder = Path(folder)

    def optional(name: str) -> Any:
        return read_json(folder / name) if (folder / name).is_file() else None

    return {"training_config": optional(TRAINING_CONFIG), "history": optional(HISTORY),
            "calibration": optional(CALIBRATION), "fairness": optional(FAIRNESS), "behaviour": optional(BEHAVIOUR),
            "engine": optional(ENGINE_INFO),
            "evaluations": {name: load_evaluation_set(folder, name) for name in evaluation_names(folder)}}
