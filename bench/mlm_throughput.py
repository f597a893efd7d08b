"""Domain-adaptive pre-training throughput (train.py --stage mlm): our step against the Hugging Face Trainer.

    python bench/mlm_throughput.py [--data ../shared/data/imdb] [--reviews 256] [--steps 16]

(a) ours: the stage's own step, the vocabulary head on the masked positions alone, length-grouped batches padded to
multiples of 64, no attention dropout, dropout masks from random bits, fused AdamW, the precision "auto" picks;
(b) the same loop on the same masked batches scoring every position with the model's own loss (the stage before its
head ran on masked positions only); (c) the Trainer as `run_mlm.py --line_by_line` runs it (one review a row), with
its best flags: `DataCollatorForLanguageModeling`, length-grouped sampling, dynamic padding, bf16 where the CPU has
it natively, and the checkpoint's own dropout (attention dropout 0.1, torch's masks). (a) and (b) alternate step by
step, (a) first, so a noisy machine slows both alike. Unlabelled IMDB reviews, max length 512, batch 16, 15 %
masked. Prints JSON: real (non-pad) tokens/s of each and the ratios; the Trainer's real tokens are the expected
count of batches drawn from these reviews, not counted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train_throughput import timed_training  # noqa: E402  (this folder, where the script runs from)
from transformers import DataCollatorForLanguageModeling  # noqa: E402

from sentiment import runtime  # noqa: E402
from sentiment.config import DEFAULT_MODEL, TrainConfig  # noqa: E402
from sentiment.loop import build_optimizer, grad_scaler, optimizer_step  # noqa: E402
from sentiment.modeling import load_tokenizer, resolve_model  # noqa: E402
from sentiment.pretraining import _masked_batch, _masked_lm, _step  # noqa: E402
from sentiment.text import length_grouped_batches  # noqa: E402

SETTINGS = TrainConfig(stage="mlm", model=DEFAULT_MODEL, progress=False)  # the stage's defaults, for all three


def whole_model_step(model, batch: dict, precision: str, device: torch.device) -> tuple[torch.Tensor, int, int]:
    """The model's own loss, its vocabulary head over every position."""
    with runtime.autocast(device, precision):
        out = model(**batch)
    return out.loss, int((batch["labels"] != -100).sum()), 0


def ours_and_whole(texts: list[str], steps: int) -> dict:
    """(a) and (b), alternating on the same batches and masks."""
    config = SETTINGS
    device = runtime.resolve_device("auto")
    precision = runtime.resolve_precision("auto", device)
    tokenizer = load_tokenizer(resolve_model(DEFAULT_MODEL))
    ids = tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=config.mlm_probability,
                                               pad_to_multiple_of=config.pad_to_multiple_of)
    runtime.set_seed(0)
    model = _masked_lm(config, device)
    optimizer, scheduler = build_optimizer(model, config, 2 * steps + 2, device)
    scaler = grad_scaler(device, precision)
    batches = length_grouped_batches([len(s) for s in ids], config.batch_size, seed=0)
    seconds, tokens = {"ours": 0.0, "whole_model": 0.0}, 0
    model.train()
    for i, batch in enumerate((batches * 4)[:steps + 1]):
        inputs = _masked_batch(collator, [ids[j] for j in batch], i, device)
        for name, step in (("ours", _step), ("whole_model", whole_model_step)):
            start = time.perf_counter()
            loss, _, _ = step(model, inputs, precision, device)
            scaler.scale(loss).backward()
            optimizer_step(model, optimizer, scheduler, scaler, config.max_grad_norm)
            if device.type == "cuda":  # the step's kernels finish before the clock stops
                torch.cuda.synchronize()
            if i:  # the first batch is warm-up: first shapes pay kernel set-up
                seconds[name] += time.perf_counter() - start
        tokens += int(inputs["attention_mask"].sum()) if i else 0
    return {"precision": precision, "steps": steps, "real_tokens": tokens,
            **{f"{name}_real_tokens_per_s": tokens / s for name, s in seconds.items()}}


def trainer(texts: list[str], steps: int, bf16: bool) -> dict:
    """(c): the Trainer's real tokens/s over `steps` steps after a warm-up step."""
    from datasets import Dataset
    from transformers import AutoModelForMaskedLM, Trainer, TrainingArguments

    model_path = resolve_model(DEFAULT_MODEL)
    tokenizer = load_tokenizer(model_path)
    data = Dataset.from_dict({"text": texts}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=SETTINGS.max_length),
        batched=True, remove_columns=["text"])
    args = TrainingArguments(output_dir="/tmp/bench-mlm-trainer", per_device_train_batch_size=SETTINGS.batch_size,
                             learning_rate=5e-5, max_steps=steps + 1, bf16=bf16, report_to=[], save_strategy="no",
                             train_sampling_strategy="group_by_length", logging_strategy="no", disable_tqdm=True,
                             use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=SETTINGS.mlm_probability)
    seconds = timed_training(Trainer(model=AutoModelForMaskedLM.from_pretrained(model_path), args=args,
                                     train_dataset=data, data_collator=collator))
    lengths = np.array([len(s) for s in data["input_ids"]])
    # expected real tokens of batches drawn from these reviews
    tokens = steps * SETTINGS.batch_size * float(lengths.mean())
    return {"steps": steps, "seconds": seconds, "real_tokens_per_s": tokens / seconds,
            "flags": f"{'bf16' if bf16 else 'fp32'}, group_by_length, dynamic padding"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"))
    parser.add_argument("--reviews", type=int, default=256)
    parser.add_argument("--steps", type=int, default=16, help="steps of each of (a) and (b); the Trainer runs fewer")
    args = parser.parse_args()
    runtime.set_threads(None)
    texts = pd.read_parquet(Path(args.data) / "unsupervised.parquet", columns=["text"])["text"]
    texts = texts.sample(args.reviews, random_state=0).astype(str).tolist()
    device = runtime.resolve_device("auto")
    result = {"machine": runtime.describe(device, runtime.resolve_precision("auto", device)),
              "reviews": args.reviews, "max_length": SETTINGS.max_length, "batch_size": SETTINGS.batch_size,
              "mlm_probability": SETTINGS.mlm_probability}
    result.update(ours_and_whole(texts, args.steps))
    result["trainer_best_flags"] = trainer(texts, max(4, args.steps // 2), bf16=result["precision"] == "bf16")
    ours_tps = result["ours_real_tokens_per_s"]
    result["speedup_vs_whole_model"] = ours_tps / result["whole_model_real_tokens_per_s"]
    result["speedup_vs_best_flags"] = ours_tps / result["trainer_best_flags"]["real_tokens_per_s"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
