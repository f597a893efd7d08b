"""Evaluate a trained model folder on labelled data, or add a report to it; the result is stored in the folder.

    python evaluate.py --artifacts artifacts --data ../shared/data/transfer/kotzias_amazon.parquet --name amazon
    python evaluate.py --artifacts artifacts --data reviews.csv --text-column body --label-column stars_ok --name ours
    python evaluate.py --artifacts artifacts --data ../shared/data/imdb --split test --name imdb-test
    python evaluate.py --artifacts artifacts --data ../shared/data/imdb --split validation --name validation
    python evaluate.py --artifacts artifacts --data ../shared/data/imdb --split validation-sentences --name valsent

An evaluation set lands in ARTIFACTS/evaluations/NAME/ (metrics, predictions keyed by row, no text), added to the
folder's manifest; the app shows every set it finds there. With the data train.py was given, --split validation
is the reviews its run held out for validation (the set to compare recipes on), and --split validation-sentences
as many sentences cut from them (a short-text screen inside validation; its labels are its reviews'). Four commands
of their own, each with its own --help:

    python evaluate.py fairness --artifacts artifacts    # the fairness report, on the test reviews of its training run
    python evaluate.py behaviour --artifacts artifacts   # the behavioural test suite (CheckList-style)
    python evaluate.py int8 --artifacts artifacts        # the int8 ONNX Runtime engine, verified on that test split
    python evaluate.py compare --artifacts new --against artifacts --name amazon   # two folders on one set

The folder is replaced atomically: a failed run leaves it as it was. compare only reads: it writes nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sentiment.config import OWN_SPLITS, VALIDATION_SENTENCES
from sentiment.errors import SentimentError
from sentiment.evaluate_config import (
    BehaviourConfig,
    CompareConfig,
    EvaluateConfig,
    FairnessConfig,
    Int8Config,
)
from sentiment.options import add_arguments, flag_name, from_namespace, is_switch

if TYPE_CHECKING:
    from sentiment.data import Labelled


def stored_run(config: EvaluateConfig, why: str | None) -> dict | None:
    """The stored config of the folder's training run, or None where it has none (`why`: the error to raise then,
    or None to allow it)."""
    from sentiment.artifacts import TRAINING_CONFIG, read_json

    path = Path(config.artifacts) / TRAINING_CONFIG
    if path.is_file():
        return read_json(path)["config"]
    if why is not None:
        raise SentimentError(f"{config.artifacts} has no {TRAINING_CONFIG}: {why}")
    return None


def own_split(stored: dict, split: str, source: str, max_samples: int | None, seed: int) -> Labelled:
    """The training run's own `split` (test or validation), rebuilt from its stored config as train.py split them."""
    from sentiment.artifacts import sha256_file
    from sentiment.data import Labelled, config_splits, sample

    splits = config_splits(stored)
    file = Path(source).expanduser()
    return Labelled(sample(getattr(splits, split), max_samples, seed), f"{splits.source} [{split}]",
                    sha256_file(file) if file.is_file() else None)


def data_identity(data: str) -> str:
    """What a --data argument names: a hub data set by its id (as the loader reads an alias that is not a local
    path), else the absolute path."""
    from sentiment.sources import HUB_ALIASES

    path = Path(data).expanduser()
    return HUB_ALIASES[data] if data in HUB_ALIASES and not path.exists() else str(path.resolve())


def own_test(config: EvaluateConfig) -> Labelled | None:
    """"test" is the training run's own test evaluation (the dashboard shows it as the model's result): it may be
    recomputed on the same reviews, rebuilt from the stored config as train.py split them (one file's test split
    is a fifth of it, not every row), never replaced by another set under that name. None: the folder has no
    training record, so the set given is loaded as any other."""
    stored = stored_run(config, None)
    if stored is None:
        return None
    source = stored.get("test_data") or stored["data"]
    own = config.split in OWN_SPLITS  # the run's held-out sets, never its test reviews
    same = (data_identity(config.data) == data_identity(source) and config.max_samples is None
            and (config.split == "test" or (stored.get("test_data") and not own)))
    if not same:
        other = {"validation": "validation", VALIDATION_SENTENCES: "valsent"}.get(config.split, "imdb-test")
        raise SentimentError(f"--name test holds {config.artifacts}'s own test evaluation, made by train.py on "
                             f"{source!r}; give this set another --name (for example {other}), or pass --data "
                             f"{source} with the default --split test and no --max-samples to recompute that one")
    return own_split(stored, "test", source, None, config.seed)


def own_validation(config: EvaluateConfig) -> Labelled:
    """--split validation: the reviews the folder's training run held out of its training data to pick its epoch
    and fit its temperature, rebuilt from the stored config as train.py split them; the set to compare recipes and
    ablations on, which the test split must not decide. (No data set this project loads has a validation split of
    its own: train.py always holds one out.) --split validation-sentences: as many sentences as those reviews, cut
    from them with their reviews' labels (`crops.sentence_set`, --seed), to compare recipes on short texts without
    the transfer sets that judge them."""
    from sentiment.crops import sentence_set
    from sentiment.data import Labelled, sample

    what = "is the reviews" if config.split == "validation" else "is cut from the reviews"
    stored = stored_run(config, f"--split {config.split} {what} its training run held out, and which those were is "
                                "unknown; evaluate it with --split test, or on other labelled data")
    source = stored["data"]
    if data_identity(config.data) != data_identity(source):
        raise SentimentError(f"--split {config.split} {what} {config.artifacts}'s training run held out of the --data "
                             f"it was given, {source!r} (a path as seen from where train.py ran): pass that data as "
                             f"it is found from here, or pick --split test")
    if config.split == "validation":
        return own_split(stored, "validation", source, config.max_samples, config.seed)
    reviews = own_split(stored, "validation", source, None, config.seed)
    return Labelled(sample(sentence_set(reviews.frame, config.seed), config.max_samples, config.seed),
                    f"{reviews.source}, sentences cut with seed {config.seed}", reviews.sha256)


def evaluate_set(config: EvaluateConfig) -> str:
    """Score the folder's model on the labelled set and store the evaluation under its name."""
    from sentiment import assess
    from sentiment.config import stored_setting
    from sentiment.data import load_labelled

    data = own_test(config) if config.name == "test" else None
    if data is None and config.split in OWN_SPLITS:
        data = own_validation(config)
    # the run's own reviews are rebuilt with the text column it was trained with; the app reads them back by it
    text_column = config.text_column if data is None else stored_setting(stored_run(config, None), "text_column")
    if data is None:
        data = load_labelled(config.data, config.split, config.text_column, config.label_column, config.label_map,
                             config.max_samples, config.seed)
    r = assess.store_evaluation(config.artifacts, config.name, data, config.data, config.split,
                                device=config.device, precision=config.precision,
                                tokens_per_batch=config.tokens_per_batch, progress=config.progress,
                                text_column=text_column, explain_mistakes=config.explain_mistakes)
    low, high = r["accuracy_ci"]
    return (f"{config.name}: n {r['n']:,}, accuracy {r['accuracy']:.4f} [{low:.4f}, {high:.4f}], ROC-AUC "
            f"{r['roc_auc']:.4f}, macro F1 {r['macro']['f1']:.4f}, ECE {r['ece']:.4f}; stored in "
            f"{config.artifacts}/evaluations/{config.name}")


def fairness(config: FairnessConfig) -> str:
    from sentiment import assess

    r = assess.store_fairness(config.artifacts, config.data, config.fairness_max_reviews, config.seed,
                              device=config.device, precision=config.precision, progress=config.progress)
    flagged = [name for name, c in r["suite"]["categories"].items() if c["largest_gap"]["flagged"]]
    return f"fairness report written to {config.artifacts}; flagged categories: {', '.join(flagged) or 'none'}"


def behaviour(config: BehaviourConfig) -> str:
    from sentiment import assess

    r = assess.store_behaviour(config.artifacts, config.seed, device=config.device, precision=config.precision,
                               progress=config.progress)
    worst = max(r["tests"], key=lambda t: t["failure_rate"])
    return (f"behavioural report written to {config.artifacts}: mean failure rate {r['mean_failure_rate']:.3f} "
            f"over {len(r['tests'])} tests; worst: {worst['name']} ({worst['failure_rate']:.3f})")


def int8(config: Int8Config) -> str:
    from sentiment import assess

    r = assess.store_engine(config.artifacts, device=config.device, precision=config.precision,
                            progress=config.progress)
    return (f"int8 engine {'kept' if r['kept'] else 'not kept'} in {config.artifacts}: accuracy {r['accuracy']:.4f} "
            f"on {r['n']:,} test reviews, torch {r['torch_accuracy']:.4f}; same label on "
            f"{100 * r['agreement']['labels_agree']:.1f} %, mean |difference| of P(positive) "
            f"{r['agreement']['mean_abs_difference']:.4f}")


def compare(config: CompareConfig) -> str:
    from sentiment import compare as paired
    from sentiment.artifacts import verify_manifest

    verify_manifest(config.against)
    frame, scored_by = paired.paired_predictions(config.artifacts, config.against, config.name)
    return paired.summary(config.name, paired.compare(frame, seed=config.seed), config.artifacts, config.against,
                          scored_by)


# command -> its settings and what runs it (returning a one-line summary); no command: an evaluation set
COMMANDS: dict[str | None, tuple[type, Callable]] = {
    None: (EvaluateConfig, evaluate_set), "fairness": (FairnessConfig, fairness),
    "behaviour": (BehaviourConfig, behaviour), "int8": (Int8Config, int8),
    "compare": (CompareConfig, compare)}


def misplaced_command(argv: list[str]) -> str | None:
    """Why these arguments (of no command) are refused before argparse sees them, or None: a command word
    after the flags, or an earlier version's flag for what is now a command."""
    takes_value = {flag_name(f.name) for f in dataclasses.fields(EvaluateConfig) if not is_switch(f)}
    for i, word in enumerate(argv):
        if word in COMMANDS and (i == 0 or argv[i - 1] not in takes_value):
            return f"give the command first: python evaluate.py {word} --artifacts DIR ..."
        if word.startswith("--") and word[2:] in COMMANDS:
            return f"{word} is a command of its own now, given first: python evaluate.py {word[2:]} --artifacts DIR"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in COMMANDS else None
    cls, job = COMMANDS[command]
    parser = argparse.ArgumentParser(prog=f"evaluate.py {command}" if command else "evaluate.py", allow_abbrev=False,
                                     description=inspect.cleandoc(cls.__doc__) if command else __doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, cls)
    problem = misplaced_command(argv) if command is None else None
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if not getattr(args, "progress", True):  # compare runs no model
        import transformers

        transformers.utils.logging.disable_progress_bar()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from sentiment import runtime

    runtime.set_probe_cache(runtime.probe_cache_from(os.environ))
    try:
        config = from_namespace(args, cls)
        from sentiment.artifacts import verify_manifest  # heavy imports only once the flags are valid

        runtime.set_threads(getattr(config, "num_threads", None))
        verify_manifest(config.artifacts)  # before reading any data: a broken folder is the first thing to know
        summary = job(config)
    except SentimentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
