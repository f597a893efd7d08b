"""Fine-tune a BERT-family classifier on review data: prepare, the epoch loop, checkpoints; then finish.py
evaluates the best epoch on the test split and writes the artifacts."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel, get_linear_schedule_with_warmup

from sentiment import checkpoint, distributed, runtime
from sentiment.artifacts import check_writable
from sentiment.checkpoint import TrainState
from sentiment.config import TrainConfig
from sentiment.data import config_splits
from sentiment.fairness import counterfactual_copies
from sentiment.finish import finish
from sentiment.modeling import load_base_classifier, load_tokenizer, resolve_model
from sentiment.predict import batched_probs
from sentiment.text import EncodedSplit, Encoder, length_grouped_batches, pad_batch

log = logging.getLogger(__name__)


@dataclass
class Run:
    """Everything a training run holds while it trains."""

    config: TrainConfig
    device: torch.device
    precision: str
    encoder: Encoder
    model: PreTrainedModel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train: EncodedSplit
    validation: EncodedSplit
    steps_per_epoch: int
    checkpoint_dir: Path
    context: distributed.Context
    # What the training steps call: the model itself, or its DistributedDataParallel wrapper under torchrun.
    forward_model: torch.nn.Module
    # fp16 needs loss scaling against gradient underflow; a no-op otherwise. Its state is not checkpointed:
    # a resumed run re-learns the scale within a few steps.
    scaler: torch.amp.GradScaler


def build_optimizer(model: torch.nn.Module, config: TrainConfig, total_steps: int, device: torch.device):
    """AdamW without decay on biases and LayerNorm weights, with a linear warm-up and decay."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, fused=device.type in ("cpu", "cuda"))
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total_steps), total_steps)
    return optimizer, scheduler


def prepare(config: TrainConfig) -> tuple[Run, EncodedSplit]:
    """Resolve hardware, load and encode the data, build model and optimizer; the test split is set aside."""
    runtime.set_threads(config.num_threads, share=distributed.local_world_size())
    context, device = distributed.setup(runtime.resolve_device(config.device))
    precision = runtime.resolve_precision(config.precision, device)
    check_writable(config.output_dir)
    check_writable(Path(config.checkpoint_dir) / checkpoint.CHECKPOINT, flag="--checkpoint-dir")
    splits = config_splits(config)
    if config.counterfactual_augmentation:
        splits.train = augment(splits.train, config.counterfactual_augmentation, config.seed)
    model_path = resolve_model(config.model)
    encoder = Encoder(load_tokenizer(model_path), config.max_length, config.truncation, config.head_ratio)
    train, validation, test = (EncodedSplit.build(f, encoder) for f in (splits.train, splits.validation, splits.test))
    distributed.check_same_data([len(train.labels), sum(map(len, train.input_ids)), len(validation.labels),
                                 len(test.labels)], context)
    runtime.set_seed(config.seed)
    model = load_base_classifier(model_path, config.attention_dropout, config.hidden_dropout).to(device)
    steps_per_epoch = -(-len(train.labels) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    optimizer, scheduler = build_optimizer(model, config, total_steps, device)
    log.info("training on %s in %s: %d steps per epoch, %d in all%s", device, precision, steps_per_epoch, total_steps,
             f", each global batch shared by {context.world} processes" if context.enabled else "")
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    return Run(config, device, precision, encoder, model, optimizer, scheduler, train, validation, steps_per_epoch,
               Path(config.checkpoint_dir), context, distributed.wrap(model, context, device), scaler), test


def augment(train: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """Training reviews plus counterfactual copies (identity terms swapped, same label); never validation/test."""
    copies = counterfactual_copies(train["text"].tolist(), train["labels"].tolist(), share, seed)
    log.info("counterfactual augmentation: %d swapped copies added to %d training reviews", len(copies), len(train))
    return pd.concat([train, pd.DataFrame(copies, columns=["text", "labels"])], ignore_index=True)


def train_step(run: Run, batch: list[int], state: TrainState) -> float:
    """One optimizer step on a global batch of example indices (this rank's shard of it under torchrun);
    updates the epoch's running sums, summed over ranks; returns the batch's mean loss."""
    own, counts = distributed.shard(batch, run.context)
    distributed.reseed_dropout(run.config.seed, state.global_step, run.context)
    inputs = pad_batch([run.train.input_ids[i] for i in own], run.encoder.pad_token_id,
                       run.config.pad_to_multiple_of)
    tokens = int(inputs["attention_mask"].sum()) if counts else 0  # counted on the host: no device sync
    if run.device.type == "cuda":  # pinned host memory lets the copy overlap the previous step's kernels
        inputs = {k: v.pin_memory() for k, v in inputs.items()}
    inputs = {k: v.to(run.device, non_blocking=True) for k, v in inputs.items()}
    labels = torch.as_tensor(run.train.labels[own], dtype=torch.long, device=run.device)
    with runtime.autocast(run.device, run.precision):
        logits = run.forward_model(**inputs).logits
    summed = F.cross_entropy(logits.float(), labels, reduction="sum")
    loss = distributed.share_of_mean(summed, len(batch), counts, run.context)
    run.scaler.scale(loss).backward()
    run.scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.config.max_grad_norm)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    local = [summed.item(), int((logits.argmax(-1) == labels).sum()), len(own), tokens] if counts else [0, 0, 0, 0]
    loss_sum, correct, seen, tokens = distributed.sum_across(local, run.context)
    state.global_step += 1
    state.step_in_epoch += 1
    state.loss_sum += loss_sum
    state.correct += int(correct)
    state.seen += int(seen)
    state.tokens += int(tokens)
    return loss_sum / len(batch)


def train_epoch(run: Run, state: TrainState) -> bool:
    """Train the rest of the current epoch; False when --max-steps ended it early."""
    config = run.config
    batches = length_grouped_batches([len(s) for s in run.train.input_ids], config.batch_size,
                                     seed=config.seed + state.epoch)
    run.forward_model.train()
    last_checkpoint = time.monotonic()
    bar = tqdm(total=len(batches), initial=state.step_in_epoch, desc=f"epoch {state.epoch + 1}/{config.epochs}",
               unit="step", disable=not (config.progress and run.context.is_main), dynamic_ncols=True)
    started, tokens_at_start = time.monotonic(), state.tokens
    seconds_at_start = state.train_seconds
    for batch in batches[state.step_in_epoch:]:
        if config.max_steps is not None and state.global_step >= config.max_steps:
            bar.close()
            return False
        loss = train_step(run, batch, state)
        elapsed = time.monotonic() - started
        state.train_seconds = seconds_at_start + elapsed
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{state.correct / state.seen:.3f}",
                        tok_s=f"{(state.tokens - tokens_at_start) / max(elapsed, 1e-9):.0f}", refresh=False)
        if time.monotonic() - last_checkpoint > config.checkpoint_minutes * 60:
            if run.context.is_main:  # every rank holds the same state
                checkpoint.save(run.checkpoint_dir, config.to_dict(), state, run.model, run.optimizer, run.scheduler)
            last_checkpoint = time.monotonic()
    bar.close()
    return True


def validate(run: Run) -> tuple[float, float]:
    """Validation loss and accuracy (each rank predicts its share of the reviews; all get the result)."""
    ids, context = run.validation.input_ids, run.context
    probs = batched_probs(run.model, ids[context.rank::context.world], run.encoder.pad_token_id, run.device,
                          run.config.eval_tokens_per_batch, run.config.pad_to_multiple_of, precision=run.precision)
    probs = distributed.gather_rows(probs, len(ids), context)
    labels = run.validation.labels
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)).mean())
    return loss, float((probs.argmax(-1) == labels).mean())


def end_epoch(run: Run, state: TrainState) -> None:
    """Validate, record the epoch in the history, keep the best weights, checkpoint, reset the running sums."""
    eval_loss, eval_accuracy = validate(run)
    record = {"epoch": state.epoch + 1, "step": state.global_step, "train_loss": state.loss_sum / max(state.seen, 1),
              "train_accuracy": state.correct / max(state.seen, 1), "eval_loss": eval_loss,
              "eval_accuracy": eval_accuracy, "train_seconds": state.train_seconds,
              "train_tokens_per_second": state.tokens / max(state.train_seconds, 1e-9)}
    state.history.append(record)
    log.info("epoch %d: %s", state.epoch + 1, json.dumps({k: round(v, 4) for k, v in record.items()}))
    improved = eval_accuracy > state.best_accuracy
    if improved:
        state.best_accuracy, state.best_epoch = eval_accuracy, state.epoch + 1
    state.epoch += 1
    state.step_in_epoch = state.loss_sum = state.correct = state.seen = state.tokens = 0
    state.train_seconds = 0.0
    if run.context.is_main:
        if improved:
            checkpoint.save_best(run.checkpoint_dir, run.model)
        checkpoint.save(run.checkpoint_dir, run.config.to_dict(), state, run.model, run.optimizer, run.scheduler)


def fit(run: Run) -> TrainState:
    """The epoch loop, from scratch or from the last checkpoint."""
    state = TrainState()
    if run.config.resume:
        state = checkpoint.restore(run.checkpoint_dir, run.config.to_dict(), run.model, run.optimizer, run.scheduler)
    while state.epoch < run.config.epochs:
        finished = train_epoch(run, state)
        if state.seen:
            end_epoch(run, state)
        if not finished:
            break
    return state


def train(config: TrainConfig) -> Path:
    """The whole run: prepare, fit (or resume), pick the best epoch, evaluate on test, write the artifacts.

    Under torchrun every rank trains and evaluates its share; rank 0 alone probes fairness and writes. A rank
    that fails leaves the process group to its exit (see distributed.teardown)."""
    started = time.monotonic()
    run, test = prepare(config)
    output_dir = finish(run, test, fit(run), started)
    distributed.teardown(run.context)
    return output_dir
