"""Domain-adaptive pre-training (Gururangan et al. 2020, "Don't Stop Pretraining"; Sun et al. 2019): the base
model trained further as a masked language model on in-domain reviews, before fine-tuning.

    python train.py --stage mlm --data ../shared/data/imdb --output-dir mlm-imdb --epochs 1
    python train.py --data ../shared/data/imdb --model mlm-imdb          # then fine-tune from it

Texts: the training split (validation carved out as fine-tuning carves it, so it stays unseen) and, where the data
folder has them, its unlabelled reviews (`unsupervised.parquet`); never test. Masks and dropout are drawn from
(seed, step), so a run killed at any moment and resumed with --resume ends with the weights of an uninterrupted
one. The output folder (weights, tokenizer, training_config.json, history.json) is a --model for fine-tuning.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModelForMaskedLM, BertForMaskedLM, DataCollatorForLanguageModeling, PreTrainedModel

from sentiment import checkpoint, runtime
from sentiment.artifacts import HISTORY, TRAINING_CONFIG, check_writable, staged, write_json
from sentiment.checkpoint import TrainState
from sentiment.config import TrainConfig
from sentiment.data import config_splits
from sentiment.errors import SentimentError
from sentiment.loop import build_optimizer, grad_scaler, optimizer_step, run_epoch
from sentiment.modeling import check_max_length, load_tokenizer, resolve_model, use_bits_dropout
from sentiment.sources import read_table, split_file
from sentiment.text import length_grouped_batches

log = logging.getLogger(__name__)

HELD_OUT = 500  # reviews kept out of pre-training to report masked-token loss and accuracy after each epoch


def mlm_texts(config: TrainConfig) -> tuple[list[str], list[str]]:
    """(training texts, held-out texts): the fine-tuning training split plus the folder's unlabelled reviews,
    shuffled with the seed; `--max-train-samples` caps the total."""
    texts = config_splits(config).train["text"].tolist()
    folder = Path(config.data).expanduser()
    unlabelled = split_file(folder, "unsupervised") if folder.is_dir() else None
    if unlabelled is not None:
        texts += read_table(unlabelled)["text"].astype(str).tolist()
    order = np.random.default_rng(config.seed).permutation(len(texts))
    texts = [texts[i] for i in order[:config.max_train_samples]] if config.max_train_samples else \
        [texts[i] for i in order]
    held = min(HELD_OUT, len(texts) // 10)
    if len(texts) - held < config.batch_size:
        raise SentimentError(f"--stage mlm: only {len(texts)} texts to pre-train on; give more data")
    log.info("masked-language-model pre-training on %d reviews (%s unlabelled), %d held out", len(texts) - held,
             "with" if unlabelled is not None else "no", held)
    return texts[held:], texts[:held]


def _masked_batch(collator: DataCollatorForLanguageModeling, ids: list[list[int]], seed: int,
                  device: torch.device) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)  # the masks (and the step's dropout) are a function of the seed and the step
    batch = collator([{"input_ids": s} for s in ids])
    return {k: v.to(device) for k, v in batch.items()}


def _step(model: PreTrainedModel, batch: dict, precision: str, device: torch.device) -> tuple[torch.Tensor, int, int]:
    """The batch's loss, its masked tokens and how many of them the model predicts right. A BERT model's vocabulary
    head runs on the masked positions alone: at hidden 384 it costs about as much per position as the six layers
    below it, and only the masked 15 % have a loss (the same loss as the model's own, which scores every position)."""
    labels = batch["labels"]
    masked = labels != -100
    with runtime.autocast(device, precision):
        if isinstance(model, BertForMaskedLM):
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            logits = model.cls(model.bert(**inputs).last_hidden_state[masked])  # (masked tokens, vocabulary)
        else:
            logits = model(**batch).logits[masked]
    # a batch with nothing masked (the collator's draw may mask no piece of very short texts) adds nothing
    loss = F.cross_entropy(logits.float(), labels[masked]) if len(logits) else logits.sum()
    correct = int((logits.argmax(-1) == labels[masked]).sum())
    return loss, int(masked.sum()), correct


@torch.no_grad()
def held_out_score(model: PreTrainedModel, collator, ids: list[list[int]], config: TrainConfig, precision: str,
                   device: torch.device) -> dict:
    """Masked-token loss and accuracy on the held-out reviews, with the same masks every epoch."""
    model.eval()
    loss_sum = masked = correct = 0.0
    for i, start in enumerate(range(0, len(ids), config.batch_size)):
        batch = _masked_batch(collator, ids[start:start + config.batch_size], config.seed + 7919 * (i + 1), device)
        loss, n, right = _step(model, batch, precision, device)
        loss_sum, masked, correct = loss_sum + float(loss) * n, masked + n, correct + right
    model.train()
    return {"eval_loss": loss_sum / max(masked, 1), "eval_accuracy": correct / max(masked, 1)}


def pretrain(config: TrainConfig) -> Path:
    """The whole stage; returns the output folder."""
    started = time.monotonic()
    device = runtime.resolve_device(config.device)
    runtime.set_threads(config.num_threads)
    precision = runtime.resolve_precision(config.precision, device)
    check_writable(config.output_dir)
    model_path = resolve_model(config.model)
    tokenizer = load_tokenizer(model_path)
    check_max_length(model_path, tokenizer, config.max_length)  # before any data is read
    train_texts, held_texts = mlm_texts(config)
    encode = lambda texts: tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"]  # noqa: E731
    train_ids, held_ids = encode(train_texts), encode(held_texts)
    runtime.set_seed(config.seed)
    model = _masked_lm(config, device)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=config.mlm_probability,
                                               pad_to_multiple_of=config.pad_to_multiple_of)
    steps_per_epoch = -(-len(train_ids) // config.batch_size)
    total = min(steps_per_epoch * config.epochs, config.max_steps or steps_per_epoch * config.epochs)
    optimizer, scheduler = build_optimizer(model, config, total, device)
    scaler = grad_scaler(device, precision)
    state, folder = TrainState(), Path(config.checkpoint_dir)
    if config.resume:
        state = checkpoint.restore(folder, config.to_dict(), model, optimizer, scheduler)
    model.train()

    def step(batch: list[int]) -> float:
        inputs = _masked_batch(collator, [train_ids[i] for i in batch], config.seed * 1_000_003 + state.global_step,
                               device)
        loss, masked, correct = _step(model, inputs, precision, device)
        scaler.scale(loss).backward()
        optimizer_step(model, optimizer, scheduler, scaler, config.max_grad_norm)
        state.global_step, state.step_in_epoch = state.global_step + 1, state.step_in_epoch + 1
        state.loss_sum, state.seen, state.correct = state.loss_sum + loss.item() * masked, state.seen + masked, \
            state.correct + correct
        state.tokens += int(inputs["attention_mask"].sum())
        return loss.item()

    def save() -> None:
        checkpoint.save(folder, config.to_dict(), state, model, optimizer, scheduler)

    while state.epoch < config.epochs and state.global_step < total:
        batches = length_grouped_batches([len(s) for s in train_ids], config.batch_size, seed=config.seed + state.epoch)
        run_epoch(config, state, batches, step, save, limit=total, label="mlm epoch", loss_name="masked-token loss")
        record = {"epoch": state.epoch + 1, "step": state.global_step,
                  "train_loss": state.loss_sum / max(state.seen, 1),
                  "train_accuracy": state.correct / max(state.seen, 1), "train_seconds": state.train_seconds,
                  "train_tokens_per_second": state.tokens / max(state.train_seconds, 1e-9),
                  **held_out_score(model, collator, held_ids, config, precision, device)}
        state.history.append(record)
        log.info("mlm epoch %d: %s", state.epoch + 1, json.dumps({k: round(v, 4) for k, v in record.items()}))
        state.next_epoch()
        save()
    _write_folder(config, model, tokenizer, state.history, {
        "runtime": runtime.describe(device, precision), "wall_seconds": time.monotonic() - started,
        "sizes": {"train": len(train_ids), "held_out": len(held_ids)}})
    return Path(config.output_dir)


def _masked_lm(config: TrainConfig, device: torch.device) -> PreTrainedModel:
    model = AutoModelForMaskedLM.from_pretrained(resolve_model(config.model), dtype=torch.float32,
                                                 attn_implementation="sdpa",
                                                 hidden_dropout_prob=config.hidden_dropout,
                                                 attention_probs_dropout_prob=config.attention_dropout).to(device)
    if config.dropout_masks == "bits":
        use_bits_dropout(model)
    return model


def _write_folder(config: TrainConfig, model: PreTrainedModel, tokenizer, history: list[dict], record: dict) -> None:
    """The pre-trained model as a folder `--model` takes, with its config and history, swapped in atomically."""
    with staged(config.output_dir) as out:
        weights = {k: v.detach().to(runtime.DTYPES[config.save_dtype]) for k, v in model.state_dict().items()}
        model.save_pretrained(out, state_dict=weights, safe_serialization=True)
        tokenizer.save_pretrained(out)
        write_json(out / TRAINING_CONFIG, {"config": config.to_dict(), "stage": "mlm", "base_model": config.model,
                                           **record})
        write_json(out / HISTORY, {"epochs": history, "best_epoch": None})
