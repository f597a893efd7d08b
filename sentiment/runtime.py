"""The only module that knows about hardware: device, precision, threads and seeds."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from functools import lru_cache

import numpy as np
import torch

from sentiment.errors import SentimentError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    """True when the CPU advertises AMX bf16 tiles, where bf16 matmuls are several times faster."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return "amx_bf16" in f.read()
    except OSError:
        return False


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else the CPU; anything else is passed to torch."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise SentimentError(f"--device {device!r} is not a device torch knows; use auto, cpu or cuda") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise SentimentError("--device cuda was asked for but no CUDA device is visible; use --device auto or cpu")
    return resolved


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' is bf16 where the hardware computes it fast (AMX CPUs, Ampere+ GPUs), else fp32."""
    if precision not in PRECISIONS:
        raise SentimentError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    return "bf16" if cpu_has_amx() else "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed-precision context for forward passes; a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


def set_seed(seed: int) -> None:
    """Seed every generator a run touches; called before the model is built."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(num_threads: int | None, share: int = 1) -> None:
    """By default the visible cores, split evenly between the `share` processes on this machine (torchrun);
    torch's own default can oversubscribe containers."""
    if num_threads is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        num_threads = cores // share
    torch.set_num_threads(max(1, num_threads))


def describe(device: torch.device, precision: str) -> dict:
    """What a run ran on, for the resolved config and the logs."""
    info = {"device": str(device), "precision": precision, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpu_amx_bf16": cpu_has_amx()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
