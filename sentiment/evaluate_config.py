"""The settings of evaluate.py's commands (an evaluation set, fairness, behaviour, int8, compare): typed dataclasses,
one source of truth for their defaults and --help text, as `sentiment.config` is for train.py's."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sentiment.config import (
    DATA_HELP,
    EXPLAIN_MISTAKES_HELP,
    PRECISIONS,
    PREDICTOR_PRECISIONS,
    SEED,
    TORCH_TOKENS_PER_BATCH,
)
from sentiment.errors import SentimentError
from sentiment.options import AT_LEAST_ONE, NON_NEGATIVE, SAMPLE_SIZE, SEED_RANGE, check_fields, option

# Evaluation-set names become folder names under <artifacts>/evaluations/.
EVALUATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_set_name(name: str) -> None:
    """--name as an evaluation set's folder name under ARTIFACTS/evaluations/."""
    if not EVALUATION_NAME.match(name):
        raise SentimentError(f"--name {name!r}: use letters, digits, '.', '-' and '_' only (at most 64 characters), "
                             f"starting with a letter or digit")


@dataclass
class FolderConfig:
    """What every evaluate.py command shares: the trained model folder it adds to, the hardware it runs on, and
    whether it shows progress."""

    artifacts: str = option("artifacts", "the trained model folder (written by train.py)")
    device: str = option("auto", "auto, cpu or cuda")
    precision: str = option("auto", "auto, int8, bf16, fp16 or fp32, as Predictor takes it (auto: the int8 engine "
                                    "where it is measured faster, else bf16 or fp32 for the CPU)",
                              choices=PREDICTOR_PRECISIONS)
    num_threads: int | None = option(None, "CPU threads (default: all visible cores)", valid=AT_LEAST_ONE)
    progress: bool = option(True, "show progress bars")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class EvaluateConfig(FolderConfig):
    """An evaluation set: the folder's model scored on labelled data, stored in ARTIFACTS/evaluations/NAME/."""

    data: str | None = option(None, DATA_HELP)
    name: str | None = option(None, "name of the evaluation set, its folder under ARTIFACTS/evaluations/ (letters, "
                                    "digits, '.', '-', '_'); the same name again replaces it")
    split: str = option("test", "which split of a data set with splits (hub, folder, aclImdb; one file is all its "
                                "rows); validation: the reviews the folder's training run held out of the --data "
                                "it was given (give that data), rebuilt as it split them; validation-sentences: as "
                                "many sentences cut from those, each labelled as its review (--seed picks them)")
    text_column: str | None = option(None, "column holding the text (default: detected among text, review, "
                                           "sentence, content)")
    label_column: str | None = option(None, "column holding the label (default: detected among label, labels, "
                                            "sentiment, polarity)")
    label_map: str | None = option(None, "explicit label mapping such as 'bad=0,good=1' (default: 0/1, neg/pos, "
                                         "negative/positive, true/false)")
    max_samples: int | None = option(None, "evaluate a stratified sample of this many rows, for quick runs",
                                     valid=SAMPLE_SIZE)
    explain_mistakes: int = option(200, EXPLAIN_MISTAKES_HELP, valid=NON_NEGATIVE)
    tokens_per_batch: int = option(TORCH_TOKENS_PER_BATCH, "token budget of one inference batch (padded tokens; "
                                                             "fastest measured on CPUs)", valid=AT_LEAST_ONE)
    seed: int = option(SEED, "seed of --max-samples and of the sentences of --split validation-sentences",
                       valid=SEED_RANGE)

    def __post_init__(self) -> None:
        if self.name is None or self.data is None:
            raise SentimentError("give --data (the labelled data) and --name (what to call the set), or a command of "
                                 "its own first: fairness, behaviour, int8 or compare (python evaluate.py --help)")
        check_set_name(self.name)
        super().__post_init__()


@dataclass
class FairnessConfig(FolderConfig):
    """The identity-term fairness report (fairness.json), on the test reviews of the folder's own training run."""

    data: str | None = option(None, DATA_HELP + "; its test split replaces the reviews the folder was tested on")
    fairness_max_reviews: int = option(300, "test reviews probed per identity category", valid=AT_LEAST_ONE)
    seed: int = option(SEED, "seed of the probe's sampling of reviews", valid=SEED_RANGE)


@dataclass
class BehaviourConfig(FolderConfig):
    """The behavioural test suite (behaviour.json): vocabulary, negation and contrast, temporal, semantic roles,
    robustness, named entities and identity terms, CheckList-style."""

    seed: int = option(SEED, "seed of the suite's generator (the same seed gives the same cases)", valid=SEED_RANGE)


@dataclass
class CompareConfig:
    """Two model folders' stored predictions of the same evaluation set, review by review (no model is run):
    accuracy with the exact McNemar test, ROC-AUC, the shift of P(positive) and the labels flipped each way, with
    95 % paired bootstrap intervals; printed, nothing written."""

    artifacts: str = option("artifacts", "the new model folder")
    against: str | None = option(None, "the model folder to compare it with (the old one)")
    name: str | None = option(None, "the evaluation set both folders hold (python evaluate.py --name NAME adds one)")
    seed: int = option(SEED, "seed of the bootstrap", valid=SEED_RANGE)

    def __post_init__(self) -> None:
        if self.against is None or self.name is None:
            raise SentimentError("give --against (the model folder to compare --artifacts with) and --name (an "
                                 "evaluation set both hold)")
        check_set_name(self.name)
        check_fields(self)


@dataclass
class Int8Config(FolderConfig):
    """The int8 ONNX Runtime engine (model.int8.onnx), kept only if its accuracy on the test split of the folder's
    training run is within 0.2 points of the torch model's."""

    precision: str = option("auto", "precision of the torch model it is checked against, where the folder stores no "
                                    "torch evaluation of that split (auto: fp32)", choices=PRECISIONS)
