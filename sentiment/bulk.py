"""Score a whole file of reviews: read an upload (CSV, JSONL, Parquet, or plain text with one review a line)
within limits, predict every row, warn about rows the model may misread, and evaluate it where it has labels."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentiment.config import ID2LABEL
from sentiment.data import LABEL_COLUMNS, TEXT_COLUMNS, candidate_columns, find_column, map_labels, require_both_classes
from sentiment.errors import SentimentError
from sentiment.evaluation import compute_metrics
from sentiment.input_checks import LanguageGuesser, row_warnings
from sentiment.predict import Predictor, takes
from sentiment.sources import read_table

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_DECODED_BYTES = 10 * MAX_UPLOAD_BYTES  # a Parquet upload's columns, decoded
MAX_ROWS = 2000  # about two minutes on two CPU cores in fp32; a bigger file belongs to evaluate.py
SUFFIXES = (".csv", ".jsonl", ".json", ".parquet", ".txt")
PREDICTION_COLUMNS = ["row", "label", "prob_positive", "confidence", "warnings"]


@dataclass
class Upload:
    """A checked upload: `text` and `row` columns, `labels` where the file has a label column."""

    frame: pd.DataFrame
    text_column: str
    label_column: str | None
    columns: list[str]
    label_note: str | None = None  # why a file with label-like columns gets predictions but no evaluation


def _read(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".parquet":  # a few MB can decode to billions of rows: count them first
        _check_parquet_size(path)
    if path.suffix.lower() != ".txt":
        return read_table(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # a byte-order mark is not text
    except UnicodeDecodeError as err:
        raise SentimentError(f"{path.name}: not valid UTF-8 (byte {err.start}); save it as UTF-8 and try "
                             f"again") from err
    return pd.DataFrame({"text": lines})  # every line, blank ones too, so that `row` is the line's number


def _check_parquet_size(path: Path) -> None:
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(path).metadata
    except Exception as err:  # pyarrow's errors for a file that is not Parquet
        raise SentimentError(f"{path.name}: not a readable Parquet file ({err})") from None
    decoded = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if metadata.num_rows > MAX_ROWS or decoded > MAX_DECODED_BYTES:
        raise SentimentError(f"{path.name} has {metadata.num_rows:,} rows ({decoded / 2**20:.0f} MB decoded); the "
                             f"limit here is {MAX_ROWS:,} rows. Split it, or run evaluate.py on it")


def read_upload(path: str | Path, text_column: str | None = None) -> Upload:
    """An uploaded file as rows to score, with a clear error for anything the page cannot take."""
    path = Path(path)
    if not path.is_file():  # Gradio hands back the same path after the upload was scored and deleted
        raise SentimentError(f"{path.name} is gone: an upload is deleted once it is scored. Upload the file again")
    if path.suffix.lower() not in SUFFIXES:
        raise SentimentError(f"{path.name}: a {path.suffix or 'suffix-less'} file cannot be scored; upload .csv, "
                             f".jsonl, .json, .parquet or .txt (one review a line)")
    size = path.stat().st_size
    if size == 0:
        raise SentimentError(f"{path.name} is empty; upload a file with at least one review")
    if size > MAX_UPLOAD_BYTES:
        raise SentimentError(f"{path.name} has {size / 2**20:.1f} MB; the limit here is "
                             f"{MAX_UPLOAD_BYTES // 2**20} MB. Split it, or run evaluate.py on it")
    frame = _read(path).reset_index(drop=True)
    if frame.empty:
        raise SentimentError(f"{path.name} holds no rows; upload a file with at least one review")
    if len(frame) > MAX_ROWS:
        raise SentimentError(f"{path.name} has {len(frame):,} rows; the limit here is {MAX_ROWS:,}. Split it, or run "
                             f"evaluate.py on it")
    text_column = find_column(frame, text_column or None, TEXT_COLUMNS, "text", path.name,
                              how="the 'Text column' box")
    texts = frame[text_column]
    bad = texts.isna() | texts.astype(str).str.replace("\x00", "").str.strip().eq("")
    if bad.all():
        raise SentimentError(f"{path.name}: every row of column {text_column!r} is empty")
    labels = candidate_columns(frame, LABEL_COLUMNS, "label")
    checked = pd.DataFrame({"row": np.arange(len(frame)), "text": texts.fillna("").astype(str)})
    upload = Upload(checked, str(text_column), None, [str(c) for c in frame.columns])
    if len(labels) > 1:  # predictions only: which one is meant cannot be told
        upload.label_note = (f"Several columns could hold labels ({', '.join(map(repr, map(str, labels)))}), so no "
                             f"evaluation; keep one of them to get one.")
    elif labels:
        try:
            checked["labels"] = map_labels(frame[labels[0]], path.name, str(labels[0]))
            upload.label_column = str(labels[0])
        except SentimentError as err:  # the predictions are still worth having
            upload.label_note = f"No evaluation: {err}."
    return upload


def score(predictor: Predictor, upload: Upload, progress: bool = False,
          language: LanguageGuesser | None = None) -> tuple[pd.DataFrame, dict | None]:
    """Predictions per row (no text) and, where the file has labels of both classes, the metrics (else None, and
    `upload.label_note` says why where the file has a label column)."""
    frame = upload.frame
    texts = frame["text"].tolist()
    scorable = [i for i, t in enumerate(texts) if takes(t)]  # the Predict tab's own check of a text
    encoder = predictor.encoder
    ids, lengths = encoder.encode_with_lengths([texts[i] for i in scorable])
    probs = np.full(len(texts), np.nan)
    probs[scorable] = predictor.predict_encoded(ids, progress=progress)[:, 1]
    n_tokens = np.zeros(len(texts), dtype=np.int64)
    n_tokens[scorable] = lengths
    predictions = pd.DataFrame({
        "row": frame["row"], "label": [ID2LABEL[int(p >= 0.5)] if np.isfinite(p) else "" for p in probs],
        "prob_positive": np.round(probs, 4), "confidence": np.round(np.maximum(probs, 1 - probs), 4),
        "warnings": ["; ".join(row_warnings(t, int(n), encoder, language)) for t, n in zip(texts, n_tokens,
                                                                                         strict=True)]})
    metrics = None
    if "labels" in frame:
        labelled = np.isfinite(probs)
        try:
            require_both_classes(frame[labelled], upload.label_column or "labels")
            metrics = compute_metrics(frame["labels"].to_numpy()[labelled], probs[labelled])
        except SentimentError as err:  # one class: accuracy alone would say little, ROC-AUC is undefined
            upload.label_note = f"No evaluation: {err}."
    log.info("scored an upload of %d rows (%d with warnings)", len(frame), int((predictions["warnings"] != "").sum()))
    return predictions[PREDICTION_COLUMNS], metrics
