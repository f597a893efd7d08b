"""Resumable training state, written atomically so that a killed run loses at most a few minutes."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from sentiment.artifacts import fsync_path
from sentiment.config import RECORD_DEFAULTS, TrainConfig, resume_keys
from sentiment.errors import SentimentError
from sentiment.options import flag_name

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
BEST = "best_model.pt"
# Settings that must match for a checkpoint to be continued (the config fields marked as shaping the run);
# anything else (threads, progress, where the artifacts go) may change.
RESUME_KEYS = resume_keys(TrainConfig)


@dataclass
class TrainState:
    """Where a run is: the epoch and batch it reached, running sums of the epoch, history, best epoch."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    tokens: int = 0
    train_seconds: float = 0.0
    pair_gap_sum: float = 0.0  # identity consistency: summed |logit-margin gap| of the epoch's pairs
    pairs_seen: int = 0
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_accuracy: float = -1.0

    def next_epoch(self) -> None:
        """Count the epoch as done and reset the epoch's running sums."""
        self.epoch += 1
        self.step_in_epoch = self.loss_sum = self.correct = self.seen = self.tokens = self.pairs_seen = 0
        self.train_seconds = self.pair_gap_sum = 0.0


def _atomic_save(payload: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    fsync_path(tmp)  # a checkpoint that survives a power loss, not an empty file under the final name
    os.replace(tmp, path)


def save(folder: Path, config: dict, state: TrainState, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
         scheduler: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_save({"config": {k: config[k] for k in RESUME_KEYS}, "state": asdict(state),
                  "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                  "scheduler": scheduler.state_dict(),
                  "torch_rng": torch.get_rng_state(),
                  "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
                 folder / CHECKPOINT)
    log.info("checkpoint after %d epochs and %d steps of the next -> %s", state.epoch, state.step_in_epoch,
             folder / CHECKPOINT)


def save_best(folder: Path, model: torch.nn.Module) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_save(model.state_dict(), folder / BEST)


def load_best(folder: Path, model: torch.nn.Module) -> None:
    if not (folder / BEST).is_file():
        raise SentimentError(f"{folder / BEST} is missing, so the best epoch's weights are lost; train again "
                             f"with another --checkpoint-dir")
    model.load_state_dict(torch.load(folder / BEST, map_location="cpu", weights_only=True))


def restore(folder: Path, config: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: Any) -> TrainState:
    """Load the last checkpoint into model, optimizer and scheduler; refuse one made with other settings."""
    path = folder / CHECKPOINT
    if not path.is_file():
        raise SentimentError(f"--resume: no checkpoint at {path}; run without --resume to start, or point "
                             f"--checkpoint-dir at the folder of the interrupted run")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    # settings added since the checkpoint was written: what the run did before each existed
    defaults = {**TrainConfig().to_dict(), **RECORD_DEFAULTS}
    changed = [k for k in RESUME_KEYS if payload["config"].get(k, defaults[k]) != config[k]]
    if changed:
        raise SentimentError(f"--resume: the checkpoint in {folder} was made with other settings "
                             f"({', '.join(flag_name(k) for k in changed)}); use the same "
                             f"flags, or start afresh with another --checkpoint-dir")
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    # Batch order comes from explicit seeds; only dropout draws from the global generator.
    torch.set_rng_state(payload["torch_rng"])
    if payload.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    state = TrainState(**payload["state"])
    log.info("resumed from %s: epoch %d, step %d", path, state.epoch + 1, state.step_in_epoch)
    return state
