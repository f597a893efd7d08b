"""Fine-tune a BERT-family classifier on review data: prepare, the epoch loop with checkpoints, the best epoch.

One process, or several under `accelerate launch` (DistributedDataParallel through Hugging Face accelerate):
`--batch-size` stays the global batch, and every process trains on its share of the same length-grouped
batches, so N processes take the same steps as one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from transformers import PreTrainedModel

from sentiment import checkpoint, runtime
from sentiment.artifacts import check_writable
from sentiment.checkpoint import TrainState
from sentiment.config import TrainConfig
from sentiment.consistency import PAIRS_PER_STEP, encoded_identity_pairs, margin_gap
from sentiment.data import Splits, config_splits
from sentiment.errors import SentimentError
from sentiment.evaluation import validation_metrics
from sentiment.loop import build_optimizer, grad_scaler, optimizer_step, run_epoch
from sentiment.mixture import augment
from sentiment.modeling import (
    check_max_length,
    first_position_logits,
    load_base_classifier,
    load_tokenizer,
    resolve_model,
    takes_first_position_path,
)
from sentiment.predict import batched_logits, softmax
from sentiment.text import EncodedSplit, Encoder, length_grouped_batches, pad_batch

log = logging.getLogger(__name__)


@dataclass
class Run:
    """Everything a training run holds while it trains."""

    config: TrainConfig
    accelerator: Accelerator
    precision: str
    splits: Splits
    encoder: Encoder
    train: EncodedSplit
    validation: EncodedSplit
    model: PreTrainedModel
    # What the training steps call: the model itself, or its DistributedDataParallel wrapper.
    forward_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler  # loop.grad_scaler
    # --identity-consistency: token ids of (sentence, swapped copy) pairs; None without it.
    pairs: list[tuple[list[int], list[int]]] | None = None

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.config.checkpoint_dir)


def _check_same_data(accelerator: Accelerator, fingerprint: list[int]) -> None:
    """Processes that loaded different data would train on different batches without any error."""
    if accelerator.num_processes == 1:
        return
    everyone = accelerator.gather(torch.tensor([fingerprint], dtype=torch.long, device=accelerator.device))
    if not bool((everyone == everyone[0]).all()):
        raise SentimentError("the processes loaded different data (sizes differ between them); give every process "
                             "the same --data and the same files")


def prepare(config: TrainConfig) -> Run:
    """Resolve hardware, load and encode the data, build model and optimizer."""
    accelerator = Accelerator(cpu=runtime.resolve_device(config.device).type == "cpu")
    runtime.set_threads(config.num_threads, share=accelerator.num_processes)
    precision = runtime.resolve_precision(config.precision, accelerator.device)
    check_writable(config.output_dir)
    check_writable(Path(config.checkpoint_dir) / checkpoint.CHECKPOINT, flag="--checkpoint-dir")
    model_path = resolve_model(config.model)
    tokenizer = load_tokenizer(model_path)
    check_max_length(model_path, tokenizer, config.max_length)  # before any data is read
    splits = config_splits(config)
    train_frame = augment(splits.train, config)
    encoder = Encoder(tokenizer, config.max_length, config.truncation, config.head_ratio)
    train, validation = EncodedSplit.build(train_frame, encoder), EncodedSplit.build(splits.validation, encoder)
    pairs = encoded_identity_pairs(splits.train["text"].tolist(), encoder, config.seed) \
        if config.identity_consistency else None
    _check_same_data(accelerator, [len(train.labels), sum(map(len, train.input_ids)), len(validation.labels),
                                   len(pairs or [])])
    runtime.set_seed(config.seed)
    model = load_base_classifier(model_path, config.attention_dropout, config.hidden_dropout,
                                 config.dropout_masks).to(accelerator.device)
    steps_per_epoch = -(-len(train.labels) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    optimizer, scheduler = build_optimizer(model, config, total_steps, accelerator.device)
    log.info("training on %s in %s: %d steps per epoch, %d in all%s", accelerator.device, precision,
             steps_per_epoch, total_steps, f", each global batch shared by {accelerator.num_processes} processes"
             if accelerator.num_processes > 1 else "")
    return Run(config, accelerator, precision, splits, encoder, train, validation, model,
               accelerator.prepare_model(model), optimizer, scheduler,
               grad_scaler(accelerator.device, precision), pairs)


def _shard(batch: list[int], accelerator: Accelerator) -> tuple[list[int], float]:
    """This process's share of a global batch, and the weight of its summed loss: DDP averages gradients over
    processes, so world/len(batch) makes the average the whole batch's mean. A process left without examples
    (a batch smaller than the world) runs one stand-in example with weight 0: every process must run backward."""
    own = batch[accelerator.process_index::accelerator.num_processes]
    if not own:
        return batch[:1], 0.0
    return own, accelerator.num_processes / len(batch)


def _pair_step(run: Run, state: TrainState) -> tuple[float, int]:
    """The identity-consistency term of a step: backward through --identity-consistency times the mean squared
    logit-margin gap of PAIRS_PER_STEP pairs drawn from (seed, process, step). Its gradients accumulate without
    DDP's all-reduce; the batch's backward that follows reduces both. Returns the summed |gap| and the pair count."""
    accelerator, config = run.accelerator, run.config
    rng = np.random.default_rng([config.seed, accelerator.process_index, state.global_step])
    chosen = rng.choice(len(run.pairs), size=min(PAIRS_PER_STEP, len(run.pairs)), replace=False).tolist()
    inputs = pad_batch([run.pairs[i][0] for i in chosen] + [run.pairs[i][1] for i in chosen],
                       run.encoder.pad_token_id, config.pad_to_multiple_of)
    inputs = {k: v.to(run.device) for k, v in inputs.items()}
    with accelerator.no_sync(run.forward_model):
        with runtime.autocast(run.device, run.precision):
            logits = classify(run, inputs)
        gap = margin_gap(logits)
        accelerator.backward(run.scaler.scale(config.identity_consistency * gap.pow(2).mean()))
    return float(gap.detach().abs().sum()), len(chosen)


def classify(run: Run, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The training model's logits: BERT's last layer at the one row its pooler reads, unless DDP wraps the model
    (its gradient hooks run through its own forward)."""
    if run.forward_model is run.model and takes_first_position_path(run.model):
        return first_position_logits(run.model, **inputs)
    return run.forward_model(**inputs).logits


def train_step(run: Run, batch: list[int], state: TrainState) -> float:
    """One optimizer step on a global batch of example indices; updates the epoch's running sums (summed over
    processes); returns the batch's mean loss."""
    accelerator = run.accelerator
    own, weight = _shard(batch, accelerator)
    # Dropout drawn from (seed, process, step): a resumed run repeats the masks of an uninterrupted one.
    torch.manual_seed(run.config.seed * 1_000_003 + accelerator.process_index * 10_007 + state.global_step)
    gap_sum, pairs = _pair_step(run, state) if run.pairs else (0.0, 0)
    inputs = pad_batch([run.train.input_ids[i] for i in own], run.encoder.pad_token_id,
                       run.config.pad_to_multiple_of)
    tokens = int(inputs["attention_mask"].sum()) if weight else 0  # counted on the host: no device sync
    if run.device.type == "cuda":  # pinned host memory lets the copy overlap the previous step's kernels
        inputs = {k: v.pin_memory() for k, v in inputs.items()}
    inputs = {k: v.to(run.device, non_blocking=True) for k, v in inputs.items()}
    labels = torch.as_tensor(run.train.labels[own], dtype=torch.long, device=run.device)
    with runtime.autocast(run.device, run.precision):
        logits = classify(run, inputs)
    if run.train.targets is None:
        summed = F.cross_entropy(logits.float(), labels, reduction="sum")
    else:  # soft targets: cross-entropy against the distribution (1 - p, p)
        p = torch.as_tensor(run.train.targets[own], dtype=torch.float32, device=run.device)
        summed = F.cross_entropy(logits.float(), torch.stack([1 - p, p], dim=1), reduction="sum")
    accelerator.backward(run.scaler.scale(summed * weight))
    optimizer_step(run.model, run.optimizer, run.scheduler, run.scaler, run.config.max_grad_norm)
    local = [summed.item(), int((logits.argmax(-1) == labels).sum()), len(own), tokens] if weight else [0, 0, 0, 0]
    local += [gap_sum, pairs]
    totals = accelerator.reduce(torch.tensor(local, dtype=torch.float64, device=run.device), "sum").tolist()
    state.global_step += 1
    state.step_in_epoch += 1
    state.loss_sum += totals[0]
    state.correct += int(totals[1])
    state.seen += int(totals[2])
    state.tokens += int(totals[3])
    state.pair_gap_sum += totals[4]
    state.pairs_seen += int(totals[5])
    return totals[0] / len(batch)


def train_epoch(run: Run, state: TrainState) -> bool:
    """Train the rest of the current epoch; False when --max-steps ended it early."""
    config = run.config
    batches = length_grouped_batches([len(s) for s in run.train.input_ids], config.batch_size,
                                     seed=config.seed + state.epoch)
    run.forward_model.train()
    return run_epoch(config, state, batches, lambda batch: train_step(run, batch, state),
                     lambda: checkpoint.save(run.checkpoint_dir, config.to_dict(), state, run.model, run.optimizer,
                                             run.scheduler),
                     limit=config.max_steps, main=run.accelerator.is_main_process)


def validation_logits(run: Run) -> np.ndarray:
    """Logits (n, 2) of the validation reviews; each process predicts its share, all get the whole."""
    accelerator, ids = run.accelerator, run.validation.input_ids
    world, rank = accelerator.num_processes, accelerator.process_index
    own = batched_logits(run.model, ids[rank::world], run.encoder.pad_token_id, run.device,
                         run.config.eval_tokens_per_batch, run.config.pad_to_multiple_of, precision=run.precision)
    if world == 1:
        return own
    rows = -(-len(ids) // world)  # pad every share to the same row count for the gather
    padded = torch.zeros((rows, own.shape[1]), dtype=torch.float32, device=run.device)
    padded[:len(own)] = torch.from_numpy(own).to(run.device)
    gathered = accelerator.gather(padded).cpu().numpy().reshape(world, rows, -1)
    logits = np.zeros((len(ids), own.shape[1]), dtype=np.float32)
    for r in range(world):
        share = len(range(r, len(ids), world))
        logits[r::world] = gathered[r, :share]
    return logits


def end_epoch(run: Run, state: TrainState) -> None:
    """Validate, record the epoch in the history, keep the best weights, checkpoint, reset the running sums."""
    validation = validation_metrics(run.validation.labels, softmax(validation_logits(run)))
    eval_accuracy = validation["eval_accuracy"]
    record = {"epoch": state.epoch + 1, "step": state.global_step, "train_loss": state.loss_sum / max(state.seen, 1),
              "train_accuracy": state.correct / max(state.seen, 1), **validation, "train_seconds": state.train_seconds,
              "train_tokens_per_second": state.tokens / max(state.train_seconds, 1e-9)}
    if state.pairs_seen:  # --identity-consistency: the mean |logit-margin gap| its pairs had in training
        record["train_identity_gap"] = state.pair_gap_sum / state.pairs_seen
    state.history.append(record)
    log.info("epoch %d: %s", state.epoch + 1, json.dumps({k: round(v, 4) for k, v in record.items()}))
    improved = eval_accuracy > state.best_accuracy
    if improved:
        state.best_accuracy, state.best_epoch = eval_accuracy, state.epoch + 1
    state.next_epoch()
    if run.accelerator.is_main_process:
        if improved:
            checkpoint.save_best(run.checkpoint_dir, run.model)
        checkpoint.save(run.checkpoint_dir, run.config.to_dict(), state, run.model, run.optimizer, run.scheduler)


def fit(run: Run) -> TrainState:
    """The epoch loop, from scratch or from the last checkpoint; ends with the best epoch's weights loaded in the
    main process."""
    state = TrainState()
    if run.config.resume:
        state = checkpoint.restore(run.checkpoint_dir, run.config.to_dict(), run.model, run.optimizer, run.scheduler)
    while state.epoch < run.config.epochs:
        finished = train_epoch(run, state)
        if state.seen:
            end_epoch(run, state)
        if not finished:
            break
    run.accelerator.wait_for_everyone()
    if run.accelerator.is_main_process:  # only it saves the artifacts; other machines need no shared disk here
        checkpoint.load_best(run.checkpoint_dir, run.model)
    return state
