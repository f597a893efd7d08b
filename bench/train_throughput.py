"""Training throughput: our loop against the Hugging Face Trainer, on the same IMDB slice, in one process.

    python bench/train_throughput.py [--data ../shared/data/imdb] [--reviews 512] [--steps 24]

(a) ours: length-grouped batches padded to multiples of 64, bf16 autocast where "auto" picks it, no attention
dropout, dropout masks from random bits, fused AdamW (also timed with --hidden-dropout 0, not the default, and
with --dropout-masks bernoulli, torch's own masks); (b) the Trainer as tutorials write it:
padding to max_length, fp32, batch 16; (c) the Trainer with its best flags: bf16 where the CPU has it natively
(fp32 where it only emulates it, as ours then trains), length-grouped sampling (transformers 5's
train_sampling_strategy="group_by_length"), dynamic padding. Same default model, max length 512, batch 16, learning
rate 2e-5. Prints JSON: real (non-pad) tokens/s of each, the ratios, the machine's measured bf16 matmul peak (none
where the CPU only emulates bf16) and that of the precision our loop trains in where that is not bf16 (fp32 on such
a CPU), and our model FLOP/s as a share of each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accelerate import Accelerator  # noqa: E402

from sentiment import runtime  # noqa: E402
from sentiment.checkpoint import TrainState  # noqa: E402
from sentiment.config import DEFAULT_MODEL, TrainConfig  # noqa: E402
from sentiment.loop import build_optimizer  # noqa: E402
from sentiment.modeling import load_base_classifier, load_tokenizer, resolve_model  # noqa: E402
from sentiment.text import EncodedSplit, Encoder, length_grouped_batches  # noqa: E402
from sentiment.training import Run, train_step  # noqa: E402


def matmul_peak(size: int = 2048, repeats: int = 20, device: str = "cpu", dtype: torch.dtype = torch.bfloat16) -> float:
    """Measured matmul FLOP/s of this machine's CPU (all threads) or of a GPU (bench/gpu_train.sh), bf16 unless
    told otherwise."""
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    wait = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(3):
        a @ b
    wait()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    wait()
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def flops_per_token(model: torch.nn.Module, seq_len: float) -> float:
    """6 x non-embedding parameters, plus attention scores and mixing (forward and backward)."""
    config = model.config
    non_embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    attention = 12 * config.num_hidden_layers * seq_len * config.hidden_size
    return 6 * non_embedding + attention


def ours(frame: pd.DataFrame, model_path: str, steps: int, hidden_dropout: float = 0.1,
         dropout_masks: str = "bits") -> dict:
    config = TrainConfig(model=DEFAULT_MODEL, epochs=1, progress=False, hidden_dropout=hidden_dropout,
                         dropout_masks=dropout_masks)
    accelerator = Accelerator(cpu=runtime.resolve_device("auto").type == "cpu")
    device = accelerator.device
    precision = runtime.resolve_precision("auto", device)
    encoder = Encoder(load_tokenizer(model_path), config.max_length, config.truncation, config.head_ratio)
    train = EncodedSplit(encoder.encode(frame["text"].tolist()), frame["labels"].to_numpy())
    runtime.set_seed(0)
    model = load_base_classifier(model_path, config.attention_dropout, config.hidden_dropout,
                                 config.dropout_masks).to(device)
    optimizer, scheduler = build_optimizer(model, config, steps, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    run = Run(config, accelerator, precision, None, encoder, train, train, model, model, optimizer, scheduler, scaler)
    batches = length_grouped_batches([len(s) for s in train.input_ids], config.batch_size, seed=0)
    state = TrainState()
    model.train()
    train_step(run, batches[0], state)  # warm-up: first shapes pay kernel set-up
    state = TrainState()
    start = time.perf_counter()
    for batch in (batches * 4)[1:steps + 1]:
        train_step(run, batch, state)
    seconds = time.perf_counter() - start
    lengths = [len(train.input_ids[i]) for b in (batches * 4)[1:steps + 1] for i in b]
    return {"steps": steps, "seconds": seconds, "real_tokens": state.tokens,
            "real_tokens_per_s": state.tokens / seconds, "mean_seq_len": float(np.mean(lengths)),
            "precision": precision, "model": model}


def timed_training(trainer) -> float:
    """Seconds a Hugging Face Trainer takes for its steps after the first (warm-up: first shapes pay kernel set-up);
    its printed metrics go to stderr, so stdout stays one JSON."""
    from transformers import TrainerCallback

    timer = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1:
                timer["start"] = time.perf_counter()

    trainer.add_callback(Clock())
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train()
    return time.perf_counter() - timer["start"]


def trainer(frame: pd.DataFrame, model_path: str, steps: int, best: bool, bf16: bool = True) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, TrainingArguments

    tokenizer = load_tokenizer(model_path)
    padding = False if best else "max_length"
    data = Dataset.from_pandas(frame.rename(columns={"labels": "label"}))
    data = data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=512, padding=padding), batched=True,
                    remove_columns=["text"])
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    args = TrainingArguments(output_dir="/tmp/bench-trainer", per_device_train_batch_size=16, learning_rate=2e-5,
                             max_steps=steps + 1, bf16=best and bf16, report_to=[], save_strategy="no",
                             train_sampling_strategy="group_by_length" if best else "random",
                             logging_strategy="no", disable_tqdm=True, use_cpu=not torch.cuda.is_available(),
                             dataloader_num_workers=0)
    real_lengths = np.array([min(len(tokenizer(t)["input_ids"]), 512) for t in frame["text"]])
    collator = DataCollatorWithPadding(tokenizer) if best else None
    seconds = timed_training(Trainer(model=model, args=args, train_dataset=data, data_collator=collator))
    tokens = steps * 16 * float(real_lengths.mean())  # expected real tokens of randomly drawn batches
    return {"steps": steps, "seconds": seconds, "real_tokens": tokens, "real_tokens_per_s": tokens / seconds,
            "flags": f"{'bf16' if bf16 else 'fp32'}, group_by_length, dynamic padding" if best
            else "fp32, padding=max_length"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"))
    parser.add_argument("--reviews", type=int, default=512)
    parser.add_argument("--steps", type=int, default=24, help="steps of our loop; the Trainers run fewer")
    args = parser.parse_args()
    runtime.set_threads(None)
    frame = pd.read_parquet(Path(args.data) / "train.parquet", columns=["text", "label"])
    frame = frame.sample(args.reviews, random_state=0).rename(columns={"label": "labels"}).reset_index(drop=True)
    model_path = resolve_model(DEFAULT_MODEL)
    result = {"machine": runtime.describe(runtime.resolve_device("auto"), runtime.resolve_precision("auto",
              runtime.resolve_device("auto"))), "reviews": args.reviews, "max_length": 512, "batch_size": 16}
    device = runtime.resolve_device("auto").type
    # Where the CPU only emulates bf16 its "peak" takes minutes to measure and says nothing (about 0.0003 TFLOP/s
    # on an AVX2-only EPYC); the share of the trained precision's peak below is the figure there.
    emulated = device == "cpu" and runtime.cpu_bf16_support() == "none"
    peak = None if emulated else matmul_peak(device=device)
    ours_result = ours(frame, model_path, args.steps)
    model = ours_result.pop("model")
    result["ours"] = ours_result
    result["ours_hidden_dropout_0"] = ours(frame, model_path, args.steps, hidden_dropout=0.0)
    result["ours_hidden_dropout_0"].pop("model")
    result["hidden_dropout_0_speedup"] = (result["ours_hidden_dropout_0"]["real_tokens_per_s"]
                                          / ours_result["real_tokens_per_s"])
    result["ours_bernoulli_masks"] = ours(frame, model_path, args.steps, dropout_masks="bernoulli")
    result["ours_bernoulli_masks"].pop("model")
    result["bits_masks_speedup"] = (ours_result["real_tokens_per_s"]
                                    / result["ours_bernoulli_masks"]["real_tokens_per_s"])
    result["trainer_best_flags"] = trainer(frame, model_path, max(4, args.steps // 3), best=True,
                                           bf16=ours_result["precision"] == "bf16")
    result["trainer_tutorial"] = trainer(frame, model_path, max(3, args.steps // 6), best=False)
    ours_tps = ours_result["real_tokens_per_s"]
    result["speedup_vs_best_flags"] = ours_tps / result["trainer_best_flags"]["real_tokens_per_s"]
    result["speedup_vs_tutorial"] = ours_tps / result["trainer_tutorial"]["real_tokens_per_s"]
    model_flops = ours_tps * flops_per_token(model, ours_result["mean_seq_len"])
    result["bf16_matmul_peak_flops"] = peak
    result["ours_model_flops"] = model_flops
    result["ours_share_of_peak"] = None if peak is None else model_flops / peak
    if ours_result["precision"] != "bf16":  # and of the peak of what it trains in
        dtype = runtime.DTYPES[ours_result["precision"]]
        result["trained_precision_matmul_peak_flops"] = matmul_peak(device=device, dtype=dtype)
        result["ours_share_of_trained_precision_peak"] = model_flops / result["trained_precision_matmul_peak_flops"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
