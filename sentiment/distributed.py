"""Several processes, one run: what `torchrun` / `accelerate launch` need from the training loop.

The launcher sets RANK, WORLD_SIZE and LOCAL_RANK; without them (a plain `python train.py`) everything here is a
no-op for a single process. The design keeps the run's arithmetic independent of the number of processes:

- `--batch-size` is the global batch. Every rank builds the same length-grouped batches from the same seed and
  trains on its own shard of each (`shard`), so N processes take the steps one process would.
- Each rank's loss is its share of the global batch mean (`share_of_mean`); DDP's gradient average then equals the
  gradient of the whole batch, whatever the shard sizes.
- Running sums (loss, accuracy, tokens) are summed across ranks every step (`sum_across`), so every rank holds
  the same global state, and the checkpoint written by rank 0 is valid for any number of ranks.
- Dropout is seeded from (seed, rank, step) before every step, so a resumed run repeats the one it continues.
- Only rank 0 writes checkpoints and artifacts; the best epoch's weights go from rank 0 to the others over the
  process group, but every rank reads the checkpoint folder on `--resume`, which must then be on a file system
  that all ranks see (always true on one machine).
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from transformers.utils import logging as transformers_logging

from sentiment.errors import SentimentError

log = logging.getLogger(__name__)

# Longest wait in a collective: the others wait for rank 0's checkpoint writes (seconds to a minute for large
# models); generous for slow disks, short enough that a lost rank ends the run within the hour.
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Context:
    """This process's place in the run: rank among `world` processes, and its device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> Context:
    """The context the launcher's environment describes (rank 0 of 1 when there is none)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as err:
        raise SentimentError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers ({err}); start several processes "
                             f"with torchrun --nproc_per_node N train.py ...") from err
    return Context(rank, world, local_rank)


def local_world_size() -> int:
    """Processes sharing this machine (the launcher's LOCAL_WORLD_SIZE), for splitting its cores between them."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError as err:
        raise SentimentError(f"LOCAL_WORLD_SIZE must be an integer ({err}); let torchrun set it") from err


def setup(device: torch.device) -> tuple[Context, torch.device]:
    """Join the process group the launcher set up; each rank of a multi-GPU run takes the GPU of its local rank."""
    context = launched()
    if not context.enabled:
        return context, device
    if device.type == "cuda":
        if device.index is not None:
            raise SentimentError(f"--device {device} under torchrun: every process would use the same GPU; give "
                                 f"--device cuda (each process takes the GPU of its local rank)")
        if local_world_size() > torch.cuda.device_count():
            raise SentimentError(f"{local_world_size()} processes on this machine but {torch.cuda.device_count()} "
                                 f"GPUs: give torchrun --nproc_per_node {torch.cuda.device_count()} at most")
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=TIMEOUT, device_id=device if device.type == "cuda" else None)
        log.info("rank %d of %d on %s (%s)", context.rank, context.world, device, backend)
    if not context.is_main:  # one set of progress bars, from rank 0
        transformers_logging.disable_progress_bar()
    return context, device


def teardown(context: Context) -> None:
    """Leave the process group after a successful run. After a failure, leave it to the exit: with NCCL,
    destroying the group can wait for peers that are stuck in a collective."""
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, context: Context, device: torch.device) -> torch.nn.Module:
    """The model as DistributedDataParallel when there are several ranks (itself otherwise)."""
    if not context.enabled:
        return model
    # Buffers (position ids) never change; syncing them every step would be pure overhead.
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, forward_sync_buffers=False)


def shard(batch: Sequence[int], context: Context) -> tuple[list[int], bool]:
    """This rank's share of a global batch, and whether it counts: a batch smaller than the world leaves some
    ranks without an example, and they run its first one with zero weight so that every rank takes the step."""
    own = list(batch[context.rank::context.world])
    return (own, True) if own else ([batch[0]], False)


def share_of_mean(summed: torch.Tensor, global_batch_size: int, counts: bool, context: Context) -> torch.Tensor:
    """This rank's summed loss as its share of the global batch mean. DDP averages gradients over ranks, hence
    the factor `world`; a rank that only holds a stand-in example contributes zero."""
    if not counts:
        return summed * 0.0
    return summed / global_batch_size * context.world


def sum_across(values: Sequence[float], context: Context) -> list[float]:
    """Element-wise sum of a few numbers over all ranks (float64, so counts stay exact)."""
    if not context.enabled:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def gather_rows(local: np.ndarray, total: int, context: Context) -> np.ndarray:
    """Reassemble rows computed by each rank on items rank::world into their original order, on every rank."""
    if not context.enabled:
        return local
    parts: list[np.ndarray | None] = [None] * context.world
    dist.all_gather_object(parts, local)
    out = np.empty((total, *local.shape[1:]), dtype=local.dtype)
    for rank, part in enumerate(parts):
        out[rank::context.world] = part
    return out


def broadcast_weights(model: torch.nn.Module, context: Context) -> None:
    """Copy rank 0's parameters and buffers to every other rank (no shared file system needed)."""
    if context.enabled:
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)


def check_same_data(fingerprint: Sequence[int], context: Context) -> None:
    """Refuse to train when ranks built different batches (other data copies or versions on other machines):
    they would call different collectives and hang, or silently train on a mix."""
    if not context.enabled:
        return
    everyone: list[list[int] | None] = [None] * context.world
    dist.all_gather_object(everyone, list(fingerprint))
    if any(other != everyone[0] for other in everyone):
        raise SentimentError(f"the processes loaded different data (review counts and token totals per rank: "
                             f"{everyone}); give every machine the same --data and flags")


def reseed_dropout(seed: int, step: int, context: Context) -> None:
    """Dropout draws that depend only on (seed, rank, step), so a resumed multi-process run repeats the run it
    continues; a single process keeps its global generator (saved in the checkpoint) as it is."""
    if context.enabled:
        torch.manual_seed(seed + 1_000_003 * context.rank + 7919 * step)
