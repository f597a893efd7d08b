"""What both training stages share (fine-tuning in training.py, MLM pre-training in pretraining.py): the optimizer
with its schedule and loss scaling, the end of each step, and the loop over an epoch's batches with its clock,
progress and periodic checkpoints."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from sentiment.checkpoint import TrainState
from sentiment.config import TrainConfig

log = logging.getLogger(__name__)

LOG_SECONDS = 120  # how often a run without progress bars logs its progress


def build_optimizer(model: torch.nn.Module, config: TrainConfig, total_steps: int, device: torch.device):
    """AdamW without decay on biases and LayerNorm weights, with a linear warm-up and decay."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, fused=device.type in ("cpu", "cuda"))
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total_steps), total_steps)
    return optimizer, scheduler


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """fp16 needs loss scaling against gradient underflow; a no-op otherwise. Not checkpointed: a resumed run
    re-learns the scale within a few steps."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def optimizer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler, scaler: torch.amp.GradScaler,
                   max_grad_norm: float) -> None:
    """The end of a training step, once the (scaled) loss is back-propagated: unscale, clip, step (skipped by the
    scaler where fp16 gradients overflowed), advance the schedule, clear the gradients."""
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def run_epoch(config: TrainConfig, state: TrainState, batches: list[list[int]], step: Callable[[list[int]], float],
              save: Callable[[], None], limit: int | None = None, label: str = "epoch", loss_name: str = "loss",
              main: bool = True) -> bool:
    """The rest of the current epoch, for either stage: `step(batch)` per batch (it advances `state`'s step and
    running sums and returns the batch's loss), the epoch's clock, a progress bar (`--progress`) or else a log line
    with an ETA every LOG_SECONDS, and `save()` every `--checkpoint-minutes`. False when `limit` (a global step
    count) ended it early. `main`: whether this process shows progress and saves (every process holds the same
    state)."""
    bar = tqdm(total=len(batches), initial=state.step_in_epoch, desc=f"{label} {state.epoch + 1}/{config.epochs}",
               unit="step", disable=not (config.progress and main), dynamic_ncols=True)
    started, tokens_at_start, seconds_at_start = time.monotonic(), state.tokens, state.train_seconds
    steps_at_start, last_log, last_checkpoint = state.step_in_epoch, started, started
    for batch in batches[state.step_in_epoch:]:
        if limit is not None and state.global_step >= limit:
            bar.close()
            return False
        loss = step(batch)
        elapsed = time.monotonic() - started
        state.train_seconds = seconds_at_start + elapsed
        rate = (state.tokens - tokens_at_start) / max(elapsed, 1e-9)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{state.correct / max(state.seen, 1):.3f}", tok_s=f"{rate:.0f}",
                        refresh=False)
        if bar.disable and main and time.monotonic() - last_log >= LOG_SECONDS:
            last_log = time.monotonic()  # logs to a file have no bar: a line now and then says how far and how long
            left = len(batches) - state.step_in_epoch
            if limit is not None:
                left = min(left, limit - state.global_step)
            log.info("%s %d/%d: step %d/%d, %s %.3f, %.0f tokens/s, about %.0f min left in the epoch", label,
                     state.epoch + 1, config.epochs, state.step_in_epoch, len(batches), loss_name,
                     state.loss_sum / max(state.seen, 1), rate,
                     elapsed / (state.step_in_epoch - steps_at_start) * left / 60)
        if time.monotonic() - last_checkpoint > config.checkpoint_minutes * 60:
            if main:
                save()
            last_checkpoint = time.monotonic()
    bar.close()
    return True
