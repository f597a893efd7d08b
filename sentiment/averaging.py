"""Weight-space averages of two classifiers (WiSE-FT, Wortsman et al. 2022): the average itself, and the split and
window it inherits from the stored records of the models it averages."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from sentiment.artifacts import HISTORY, TRAINING_CONFIG, read_json
from sentiment.config import SPLIT_FIELDS, WINDOW_FIELDS, stored_setting
from sentiment.errors import SentimentError
from sentiment.modeling import load_tokenizer
from sentiment.options import flag_name

log = logging.getLogger(__name__)


def _load_classifier(folder: Path, flag: str) -> PreTrainedModel:
    """A saved classifier in fp32, refused where any of its weights would be initialised afresh (a base encoder,
    a masked-LM folder, a partial save): an average with a random head means nothing."""
    if not (folder / "config.json").is_file():
        raise SentimentError(f"{flag} {folder}: no saved classifier here (no config.json); --stage average takes two "
                             f"folders train.py wrote, such as artifacts")
    model, info = AutoModelForSequenceClassification.from_pretrained(
        folder, dtype=torch.float32, use_safetensors=True, output_loading_info=True)
    missing = sorted(info["missing_keys"]) + sorted(info["mismatched_keys"])
    if missing:
        raise SentimentError(f"{flag} {folder}: not a trained classifier ({len(missing)} weights missing, such as "
                             f"{missing[0]}); --stage average takes two folders train.py wrote, such as artifacts")
    return model


def average_classifiers(first: str | Path, second: str | Path, weight: float) -> PreTrainedModel:
    """(1 - weight) * first + weight * second, tensor by tensor in fp32, of the weights as saved.

    The saved heads have each folder's calibration temperature folded in, so the average is of the two served
    models; the caller fits a temperature to the average afterwards. It is meaningful where one model continues
    the other, or both continue one model."""
    if not 0.0 < weight < 1.0:
        raise SentimentError(f"the averaging weight must be between 0 and 1, not {weight}")
    a, b = _load_classifier(Path(first), "--model"), _load_classifier(Path(second), "--average-with")
    if (a.config.model_type, a.config.id2label) != (b.config.model_type, b.config.id2label):
        raise SentimentError(f"{first} and {second} are different kinds of classifier ({a.config.model_type} with "
                             f"labels {a.config.id2label} against {b.config.model_type} with {b.config.id2label})")
    if load_tokenizer(str(first)).get_vocab() != load_tokenizer(str(second)).get_vocab():
        raise SentimentError(f"{first} and {second} have different vocabularies, so their weights do not correspond")
    ours, theirs = a.state_dict(), b.state_dict()
    mismatched = sorted(k for k in ours.keys() | theirs.keys()
                        if k not in ours or k not in theirs or ours[k].shape != theirs[k].shape)
    if mismatched:
        raise SentimentError(f"{first} and {second} differ in shape at {', '.join(mismatched[:3])}"
                             f"{' ...' if len(mismatched) > 3 else ''}; only one architecture's weights average")
    averaged = {}
    for name, tensor in ours.items():
        if tensor.is_floating_point():
            averaged[name] = torch.lerp(tensor, theirs[name].to(tensor.dtype), weight)
        elif torch.equal(tensor, theirs[name]):
            averaged[name] = tensor
        else:
            raise SentimentError(f"{first} and {second} differ in the non-float tensor {name}, which cannot be "
                                 f"averaged")
    a.load_state_dict(averaged)
    return a


def stored_record(folder: str | Path) -> dict | None:
    """The training_config.json of a folder this project wrote; None for any other model."""
    path = Path(folder) / TRAINING_CONFIG
    return read_json(path) if path.is_file() else None


def lineage(record: dict | None) -> Iterator[dict]:
    """A stored record and every record it descends from (the folders it continued or averaged)."""
    stack = [record]
    while stack:
        current = stack.pop()
        if current is not None:
            yield current
            stack += [current.get("continued_from"), current.get("averaged_with")]


def inherited_settings(records: dict[str, dict | None]) -> dict:
    """The split and window of the models to average (flag -> stored record or None), from every record in their
    lineages, which must agree: the average is validated on the reviews none of them trained on, and served with
    the window they were trained with. Empty where no model has a record."""
    settings: dict = {}
    where: dict[str, str] = {}
    for flag, record in records.items():
        for ancestor in lineage(record):
            for name in SPLIT_FIELDS + WINDOW_FIELDS:
                value = stored_setting(ancestor["config"], name)
                if name in settings and settings[name] != value:
                    raise SentimentError(
                        f"the models to average were trained with different {flag_name(name)} ({settings[name]!r} "
                        f"in the lineage of {where[name]}, {value!r} in that of {flag}), so no validation split is "
                        f"held out from both; average models trained on one split")
                settings.setdefault(name, value)
                where.setdefault(name, flag)
    return settings


def related(first: dict | None, second: dict | None) -> bool:
    """Whether one stored record descends from the other, or both from one trained folder."""
    ours = list(lineage(first))
    return any(record in ours for record in lineage(second))


def averaged_histories(first: str | Path, second: str | Path, weight: float) -> list[dict]:
    """The training epochs of the two models, for the average's curves: folder, weight, its epochs, and the epoch
    its own count starts after (the second's after the first's where it continues the first)."""
    parts = []
    for folder, share in ((first, 1 - weight), (second, weight)):
        path = Path(folder) / HISTORY
        epochs = read_json(path).get("epochs", []) if path.is_file() else []
        parts.append({"folder": str(folder), "weight": share, "epochs": epochs, "after_epoch": 0})
    first_record, second_record = stored_record(first), stored_record(second)
    if first_record is not None and second_record is not None and second_record.get("continued_from") == first_record:
        parts[1]["after_epoch"] = len(parts[0]["epochs"])
    return parts
