"""Fine-tune a BERT-family model on IMDB reviews and write the artifacts the app serves.

    python train.py --data ../shared/data/imdb             # the full recipe
    python train.py --data ../shared/data/imdb --max-train-samples 256 --max-eval-samples 128 --epochs 1
    python train.py --stage mlm --data ../shared/data/imdb --output-dir mlm-imdb   # domain-adaptive pre-training
    python train.py --data ../shared/data/imdb --model mlm-imdb                     # ... then fine-tune from it
    python train.py --stage average --model artifacts --average-with runs/continued --average-weight 0.5 \\
        --output-dir runs/average                  # weight-space average of a model and its continuation
    accelerate launch --multi_gpu --num_processes 2 train.py --data ../shared/data/imdb   # --batch-size is global

prepare the data and model -> fit (checkpoints, --resume) -> save the best epoch to a staging folder -> calibrate
and evaluate the saved folder through the Predictor the app serves -> swap it into --output-dir. --stage mlm
pre-trains instead; --stage average replaces the first two steps by the weight-space average of two classifiers.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sentiment.config import TrainConfig
from sentiment.errors import SentimentError
from sentiment.options import add_arguments, flag_name, from_namespace

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from sentiment.data import Splits


def train(config: TrainConfig) -> Path | None:
    """The whole run; returns the artifacts folder (None in the processes other than the main one)."""
    from sentiment import runtime, training  # heavy imports only once the flags are valid

    if config.stage == "mlm":
        from sentiment.pretraining import pretrain

        return pretrain(config)
    if config.stage == "average":
        return average(config)
    started = time.monotonic()
    run = training.prepare(config)
    state = training.fit(run)
    if not run.accelerator.is_main_process:
        return None
    sizes = {"train": len(run.train.labels),  # counterfactual copies included
             "validation": len(run.splits.validation), "test": len(run.splits.test)}
    history = {"epochs": state.history, "best_epoch": state.best_epoch}
    finish(config, run.model, run.encoder.tokenizer, run.splits, history,
           {"runtime": runtime.describe(run.device, run.precision), "sizes": sizes}, started)
    return Path(config.output_dir)


def average(config: TrainConfig) -> Path:
    """--stage average: no training; the weight-space average of two classifiers on the split and window their
    records name, validated, then calibrated and evaluated as a trained model is."""
    from sentiment import runtime
    from sentiment.artifacts import check_writable
    from sentiment.averaging import average_classifiers, averaged_histories, inherited_settings, related, stored_record
    from sentiment.data import config_splits
    from sentiment.evaluation import validation_metrics
    from sentiment.modeling import load_tokenizer, resolve_model
    from sentiment.predict import batched_logits, softmax
    from sentiment.text import Encoder

    log = logging.getLogger(__name__)
    started = time.monotonic()
    check_writable(config.output_dir)
    folders = {"--model": resolve_model(config.model), "--average-with": config.average_with}
    records = {flag: stored_record(path) for flag, path in folders.items()}
    settings = inherited_settings(records)
    if settings:  # as the models were trained, whatever this command's own flags say
        config = dataclasses.replace(config, **settings)
        log.info("split and window from the averaged models' records: %s",
                 ", ".join(f"{flag_name(k)} {v}" for k, v in settings.items() if v is not None))
    if not related(*records.values()):
        log.warning("neither %s nor %s descends from the other as far as their records tell; an average of "
                    "unrelated fine-tunings is rarely a working model", *folders.values())
    device = runtime.resolve_device(config.device)
    runtime.set_threads(config.num_threads)
    runtime.set_seed(config.seed)
    precision = runtime.resolve_precision(config.precision, device)
    model = average_classifiers(folders["--model"], config.average_with, config.average_weight).to(device)
    tokenizer = load_tokenizer(folders["--model"])
    splits = config_splits(config)
    # Measured as a training epoch measures its validation (the model in memory, autocast), so that it compares
    # with the validation accuracy of the models averaged.
    encoded = Encoder(tokenizer, config.max_length, config.truncation, config.head_ratio).encode(
        splits.validation["text"].tolist())
    validation = validation_metrics(splits.validation["labels"].to_numpy(), softmax(batched_logits(
        model, encoded, tokenizer.pad_token_id, device, config.eval_tokens_per_batch, config.pad_to_multiple_of,
        precision=precision, progress=config.progress)))
    log.info("average of %s and %s (weight %g on the second): validation accuracy %.4f", *folders.values(),
             config.average_weight, validation["eval_accuracy"])
    history = {"epochs": [], "best_epoch": None, "average": validation,
               "averaged": averaged_histories(folders["--model"], config.average_with, config.average_weight)}
    finish(config, model, tokenizer, splits, history,
           {"runtime": runtime.describe(device, precision), "averaged_with": records["--average-with"],
            "sizes": {"validation": len(splits.validation), "test": len(splits.test)}}, started)
    return Path(config.output_dir)


def finish(config: TrainConfig, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, splits: Splits,
           history: dict, record: dict, started: float) -> None:
    """Save the model to a staging folder, calibrate and evaluate it there through the Predictor the app serves
    (test split, int8 engine, fairness probe, behavioural suite), then swap it into --output-dir."""
    from sentiment import assess, runtime
    from sentiment.artifacts import (
        HISTORY,
        TEST_EVALUATION,
        TRAINING_CONFIG,
        read_json,
        sha256_file,
        staged,
        write_json,
    )
    from sentiment.data import Labelled
    from sentiment.modeling import resolve_model, save_model
    from sentiment.predict import Predictor

    with staged(config.output_dir) as folder:  # swapped into --output-dir only once all of it is written
        save_model(model, tokenizer, folder, runtime.DTYPES[config.save_dtype])
        origin = Path(resolve_model(config.model)) / TRAINING_CONFIG  # a folder this project trained: its record
        write_json(folder / TRAINING_CONFIG, {  # the grouping as held out, so that a rebuild holds out the same
            "config": {**config.to_dict(), "validation_grouping": splits.validation_grouping},
            "base_model": config.model,
            "continued_from": read_json(origin) if origin.is_file() else None, **record,
            "wall_seconds": time.monotonic() - started})
        write_json(folder / HISTORY, history)
        if config.calibrate:
            assess.calibrate_into(folder, splits.validation, config.save_dtype, config.precision,
                                  progress=config.progress, device=config.device)
        predictor = Predictor.from_artifacts(folder, device=config.device, precision=config.precision, verify=False)
        if config.test:
            test_file = Path(config.test_data or config.data).expanduser()
            test = Labelled(splits.test, f"{splits.source} [test]",
                            sha256_file(test_file) if test_file.is_file() else None)
            assess.evaluate_into(folder, TEST_EVALUATION, predictor, test, config.test_data or config.data, "test",
                                 progress=config.progress, text_column=config.text_column,
                                 explain_mistakes=config.explain_mistakes)
            if config.int8:
                int8_engine_into(folder, predictor, test.frame, config)
            if config.fairness:
                assess.fairness_into(folder, predictor, test.frame["text"].tolist(), config.fairness_max_reviews,
                                     config.seed)
        else:
            logging.getLogger(__name__).info("--no-test: no test review is scored (no test evaluation, int8 "
                                             "engine or fairness probe)")
        if config.behaviour:
            assess.behaviour_into(folder, predictor, config.seed)


def int8_engine_into(folder: Path, predictor, test, config: TrainConfig) -> None:
    """The int8 engine of the trained model, where it can be built; a failure costs the engine, never the run."""
    from sentiment import assess
    from sentiment.engine import ENGINE_FILE, ENGINE_INFO, missing_packages

    log = logging.getLogger(__name__)
    if predictor.device.type != "cpu" or missing_packages():
        log.warning("no int8 engine: %s", "it serves CPUs; build it there with evaluate.py int8"
                    if predictor.device.type != "cpu" else f"{', '.join(missing_packages())} not installed")
        return
    try:
        torch_probs = assess.stored_torch_probabilities(folder, len(test))
        if torch_probs is None:
            raise SentimentError("the test evaluation just written is not torch's on the whole split")
        assess.engine_into(folder, predictor, test, torch_probs, progress=config.progress)
    except Exception as err:  # the model and its evaluation are worth more than the engine
        log.warning("int8 engine not built (%s: %s); build it later with evaluate.py int8", type(err).__name__, err)
        for name in (ENGINE_FILE, ENGINE_INFO):
            (folder / name).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, TrainConfig)
    args = parser.parse_args(argv)
    if not args.progress:
        import transformers

        transformers.utils.logging.disable_progress_bar()
    rank = int(os.environ.get("RANK", "0"))  # set by accelerate launch / torchrun
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s %(levelname)s {f'rank {rank} ' if 'RANK' in os.environ else ''}"
                               f"%(name)s: %(message)s")
    from sentiment import runtime

    runtime.set_probe_cache(runtime.probe_cache_from(os.environ))
    try:
        config = from_namespace(args, TrainConfig)
        if config.stage != "classify" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise SentimentError(f"--stage {config.stage} runs in one process (only --stage classify trains across "
                                 f"several); run it without accelerate launch or torchrun")
        output_dir = train(config)
    except SentimentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if output_dir is not None:
        print(f"artifacts written to {output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
