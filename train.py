"""Fine-tune a BERT-family model on IMDB reviews and write the artifacts the app serves.

    python train.py --data ../shared/data/imdb             # the full recipe
    python train.py --data ../shared/data/imdb --max-train-samples 256 --max-eval-samples 128 --epochs 1
    python train.py --stage mlm --data ../shared/data/imdb --output-dir mlm-imdb   # domain-adaptive pre-training
    python train.py --data ../shared/data/imdb --model mlm-imdb                     # ... then fine-tune from it
    accelerate launch --num_processes 2 train.py --data ../shared/data/imdb   # --batch-size stays the global batch

prepare the data and model -> fit (checkpoints, --resume) -> save the best epoch to a staging folder -> calibrate
and evaluate the saved folder through the Predictor the app serves -> swap it into --output-dir.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from sentiment.config import TrainConfig, add_arguments, from_namespace
from sentiment.errors import SentimentError


def train(config: TrainConfig) -> Path | None:
    """The whole run; returns the artifacts folder (None in the processes other than the main one)."""
    from sentiment import assess, runtime, training  # heavy imports only once the flags are valid
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

    if config.stage == "mlm":
        from sentiment.pretraining import pretrain

        return pretrain(config)
    started = time.monotonic()
    run = training.prepare(config)
    state = training.fit(run)
    if not run.accelerator.is_main_process:
        return None
    with staged(config.output_dir) as folder:  # swapped into --output-dir only once all of it is written
        save_model(run.model, run.encoder.tokenizer, folder, runtime.DTYPES[config.save_dtype])
        origin = Path(resolve_model(config.model)) / TRAINING_CONFIG  # a folder this project trained: its record
        write_json(folder / TRAINING_CONFIG, {
            "config": config.to_dict(), "base_model": config.model,
            "continued_from": read_json(origin) if origin.is_file() else None,
            "runtime": runtime.describe(run.device, run.precision), "wall_seconds": time.monotonic() - started,
            "sizes": {"train": len(run.train.labels),  # counterfactual copies included
                      "validation": len(run.splits.validation), "test": len(run.splits.test)}})
        write_json(folder / HISTORY, {"epochs": state.history, "best_epoch": state.best_epoch})
        if config.calibrate:
            assess.calibrate_into(folder, run.splits.validation, config.save_dtype, config.precision,
                                  progress=config.progress, device=config.device)
        predictor = Predictor.from_artifacts(folder, device=config.device, precision=config.precision, verify=False)
        test_file = Path(config.test_data or config.data).expanduser()
        test = Labelled(run.splits.test, f"{run.splits.source} [test]",
                        sha256_file(test_file) if test_file.is_file() else None)
        metrics = assess.evaluate_into(folder, TEST_EVALUATION, predictor, test, config.test_data or config.data,
                                       "test", progress=config.progress, text_column=config.text_column,
                                       explain_mistakes=config.explain_mistakes)
        if config.int8:
            int8_engine_into(folder, predictor, test.frame, metrics["accuracy"], config)
        if config.fairness:
            assess.fairness_into(folder, predictor, test.frame["text"].tolist(), config.fairness_max_reviews,
                                 config.seed)
        if config.behaviour:
            assess.behaviour_into(folder, predictor, config.seed)
    return Path(config.output_dir)


def int8_engine_into(folder: Path, predictor, test, torch_accuracy: float, config: TrainConfig) -> None:
    """The int8 engine of the trained model, where it can be built; a failure costs the engine, never the run."""
    from sentiment import assess
    from sentiment.engine import ENGINE_FILE, ENGINE_INFO, missing_packages

    log = logging.getLogger(__name__)
    if predictor.device.type != "cpu" or missing_packages():
        log.warning("no int8 engine: %s", "it serves CPUs; build it there with evaluate.py --int8"
                    if predictor.device.type != "cpu" else f"{', '.join(missing_packages())} not installed")
        return
    try:
        assess.engine_into(folder, predictor, test, torch_accuracy, progress=config.progress)
    except Exception as err:  # the model and its evaluation are worth more than the engine
        log.warning("int8 engine not built (%s: %s); build it later with evaluate.py --int8", type(err).__name__, err)
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
        output_dir = train(from_namespace(args, TrainConfig))
    except SentimentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if output_dir is not None:
        print(f"artifacts written to {output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
