"""Evaluate a trained model folder on labelled data, or run its fairness report; the result is stored in the folder.

    python evaluate.py --artifacts artifacts --data ../shared/data/transfer/kotzias_amazon.parquet --name amazon
    python evaluate.py --artifacts artifacts --data reviews.csv --text-column body --label-column stars_ok --name ours
    python evaluate.py --artifacts artifacts --data ../shared/data/imdb --split test --name imdb-test
    python evaluate.py --artifacts artifacts --fairness        # on the test reviews its training run used
    python evaluate.py --artifacts artifacts --behaviour       # the behavioural test suite (CheckList-style)
    python evaluate.py --artifacts artifacts --int8            # the int8 ONNX Runtime engine, verified on test

An evaluation set lands in ARTIFACTS/evaluations/NAME/ (metrics, predictions keyed by row, no text), added to the
folder's manifest; the app shows every set it finds there. The folder is replaced atomically: a failed run leaves
it as it was.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sentiment.config import EvaluateConfig, add_arguments, from_namespace
from sentiment.errors import SentimentError

if TYPE_CHECKING:
    from sentiment.data import Labelled


def own_test(config: EvaluateConfig) -> Labelled | None:
    """"test" is the training run's own test evaluation (the dashboard shows it as the model's result): it may be
    recomputed on the same reviews, rebuilt from the stored config as train.py split them (one file's test split
    is a fifth of it, not every row), never replaced by another set under that name. None: the folder has no
    training record, so the set given is loaded as any other."""
    from sentiment.artifacts import TRAINING_CONFIG, read_json, sha256_file
    from sentiment.data import Labelled, config_splits

    path = Path(config.artifacts) / TRAINING_CONFIG
    if not path.is_file():
        return None
    stored = read_json(path)["config"]
    source = stored.get("test_data") or stored.get("data")
    same = (source is not None and Path(config.data).resolve() == Path(source).resolve()
            and config.max_samples is None and (config.split == "test" or stored.get("test_data")))
    if not same:
        raise SentimentError(f"--name test holds {config.artifacts}'s own test evaluation, made by train.py on "
                             f"{source!r}; give this set another --name (for example imdb-test), or pass --data "
                             f"{source} with the default --split test and no --max-samples to recompute that one")
    splits = config_splits(stored)
    file = Path(source).expanduser()
    return Labelled(splits.test, f"{splits.source} [test]", sha256_file(file) if file.is_file() else None)


def evaluate(config: EvaluateConfig) -> dict:
    from sentiment import assess, runtime  # heavy imports only once the flags are valid
    from sentiment.artifacts import verify_manifest
    from sentiment.data import load_labelled

    runtime.set_threads(config.num_threads)
    verify_manifest(config.artifacts)  # before reading any data: a broken folder is the first thing to know
    if config.int8:
        return assess.store_engine(config.artifacts, device=config.device, precision=config.precision,
                                   progress=config.progress)
    if config.behaviour:
        return assess.store_behaviour(config.artifacts, config.seed, device=config.device, precision=config.precision)
    if config.fairness:
        return assess.store_fairness(config.artifacts, config.data, config.fairness_max_reviews, config.seed,
                                     device=config.device, precision=config.precision)
    data = own_test(config) if config.name == "test" else None
    if data is None:
        data = load_labelled(config.data, config.split, config.text_column, config.label_column, config.label_map,
                             config.max_samples, config.seed)
    return assess.store_evaluation(config.artifacts, config.name, data, config.data, config.split,
                                   device=config.device, precision=config.precision,
                                   tokens_per_batch=config.tokens_per_batch, progress=config.progress,
                                   text_column=config.text_column, explain_mistakes=config.explain_mistakes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, EvaluateConfig)
    args = parser.parse_args(argv)
    if not args.progress:
        import transformers

        transformers.utils.logging.disable_progress_bar()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from sentiment import runtime

    runtime.set_probe_cache(runtime.probe_cache_from(os.environ))
    try:
        config = from_namespace(args, EvaluateConfig)
        result = evaluate(config)
    except SentimentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if config.int8:
        print(f"int8 engine {'kept' if result['kept'] else 'not kept'} in {config.artifacts}: accuracy "
              f"{result['accuracy']:.4f} on {result['n']:,} test reviews, torch {result['torch_accuracy']:.4f}; same "
              f"label on {100 * result['agreement']['labels_agree']:.1f} %, mean |difference| of P(positive) "
              f"{result['agreement']['mean_abs_difference']:.4f}")
    elif config.behaviour:
        worst = max(result["tests"], key=lambda t: t["failure_rate"])
        print(f"behavioural report written to {config.artifacts}: mean failure rate {result['mean_failure_rate']:.3f}"
              f" over {len(result['tests'])} tests; worst: {worst['name']} ({worst['failure_rate']:.3f})")
    elif config.fairness:
        flagged = [name for name, c in result["suite"]["categories"].items() if c["largest_gap"]["flagged"]]
        print(f"fairness report written to {config.artifacts}; flagged categories: {', '.join(flagged) or 'none'}")
    else:
        low, high = result["accuracy_ci"]
        print(f"{config.name}: n {result['n']:,}, accuracy {result['accuracy']:.4f} [{low:.4f}, {high:.4f}], "
              f"ROC-AUC {result['roc_auc']:.4f}, macro F1 {result['macro']['f1']:.4f}, ECE {result['ece']:.4f}; "
              f"stored in {config.artifacts}/evaluations/{config.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
