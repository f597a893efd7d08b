"""The only module that knows about hardware: device, precision, threads and seeds."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
from collections.abc import Mapping
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import torch

from sentiment.config import PRECISIONS
from sentiment.errors import SentimentError

log = logging.getLogger(__name__)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
# x86 `flags`: AMX tiles, AVX512-BF16 dot products; Arm `Features`: FEAT_BF16 for NEON and for SVE.
NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16", "bf16", "svebf16"})
# VNNI dates the CPU's generation in a run's record; VNNI and AMX-INT8 also decide which int8 kernels run
INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})  # int8 dot products without AVX2's saturation
RECORDED_FLAGS = NATIVE_BF16_FLAGS | INT8_DOT_FLAGS
# Without native bf16, oneDNN computes bf16 on AVX512 by converting to fp32: whether the halved memory traffic
# pays for the conversions depends on the chip, so it is measured, and bf16 must win clearly to be chosen.
PROBE_MIN_SPEEDUP = 1.2
PROBE_CACHE_FILE = "cpu_precision.json"


@lru_cache(maxsize=1)
def read_cpuinfo() -> str:
    """/proc/cpuinfo, read once per process; empty where there is none (macOS, Windows)."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return ""


def cpu_fields(cpuinfo: str | None = None) -> dict[str, str]:
    """The first processor's `key: value` lines (all cores report the same); None reads this machine's."""
    block = (read_cpuinfo() if cpuinfo is None else cpuinfo).strip().split("\n\n", 1)[0]
    lines = (line.partition(":") for line in block.splitlines())
    return {key.strip(): value.strip() for key, colon, value in lines if colon}


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags: x86 `flags`, Arm `Features`."""
    fields = cpu_fields(cpuinfo)
    return set(fields.get("flags", fields.get("Features", "")).split())


def cpu_model_name(cpuinfo: str | None = None) -> str:
    """`model name` on x86; Arm kernels usually print none, so the implementer and part number name the core."""
    fields = cpu_fields(cpuinfo)
    arm = f"arm {fields.get('CPU implementer')}:{fields['CPU part']}" if "CPU part" in fields else "unknown cpu"
    return fields.get("model name", arm)


def cpu_bf16_support(cpuinfo: str | None = None) -> str:
    """'native' with bf16 math in hardware; 'none' where bf16 is only emulated, slowly (x86 without AVX512,
    Arm without FEAT_BF16); 'unclear' otherwise (AVX512 without bf16, no readable cpuinfo)."""
    fields, flags = cpu_fields(cpuinfo), cpu_flags(cpuinfo)
    if flags & NATIVE_BF16_FLAGS:
        return "native"
    if "Features" in fields or ("flags" in fields and not flags & {"avx512f", "avx_ne_convert"}):
        return "none"
    return "unclear"


def probe_cpu_precision(rows: int = 256, repeats: int = 5) -> str:
    """'bf16' when a BERT-like linear layer (rows = batch*seq tokens, 384 -> 1536 features) runs clearly faster
    in bf16 than in fp32 on this CPU, else 'fp32'. Best of `repeats` after a warm-up; well under a second."""
    x, weight = torch.randn(rows, 384), torch.randn(1536, 384)
    seconds = {}
    with torch.inference_mode():
        for name in ("fp32", "bf16"):
            a, w = x.to(DTYPES[name]), weight.to(DTYPES[name])
            timings = []
            for _ in range(repeats + 1):  # the first is a warm-up: oneDNN picks and caches its kernel there
                start = time.perf_counter()
                torch.nn.functional.linear(a, w)
                timings.append(time.perf_counter() - start)
            seconds[name] = min(timings[1:])  # the least disturbed by other processes on a shared machine
    choice = "bf16" if seconds["fp32"] >= PROBE_MIN_SPEEDUP * seconds["bf16"] else "fp32"
    log.info("bf16 probe: fp32 %.2f ms, bf16 %.2f ms -> %s", 1e3 * seconds["fp32"], 1e3 * seconds["bf16"], choice)
    return choice


PROBE_CACHE: Path | None = None  # where probe results outlive the process; entry points set it, None: they do not


def probe_cache_from(environ: Mapping[str, str]) -> Path | None:
    """The probe cache folder an entry point hands the library (`set_probe_cache`): $SENTIMENT_CACHE_DIR, else
    `sentiment` in the user's cache folder ($XDG_CACHE_HOME, else ~/.cache); SENTIMENT_CACHE_DIR="" keeps nothing."""
    folder = environ.get("SENTIMENT_CACHE_DIR")
    if folder is not None:
        return Path(folder) if folder else None
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sentiment"


def set_probe_cache(folder: Path | None) -> None:
    global PROBE_CACHE
    PROBE_CACHE = folder


def cache_folder() -> Path | None:
    """The probe cache folder the entry point set; None keeps probe results for this process only."""
    return PROBE_CACHE


def read_probe_cache(path: Path | None) -> dict:
    """A probe cache file's {key: result}; empty where there is none or it is corrupt (then probed again)."""
    try:
        return dict(json.loads(path.read_text(encoding="utf-8"))) if path is not None else {}
    except (OSError, ValueError, TypeError):
        return {}


# A probe that got less than this share of its threads' time ran beside other busy processes; its answer holds for
# the load that measured it and is not kept. Measured on 2 cores of an AMX Xeon: 0.91 and 0.99 on an idle machine
# for the two engine probes, 0.48 beside two busy processes.
PROBE_MIN_CPU_SHARE = 0.75


def cpu_clock() -> tuple[float, float]:
    """(this process's CPU seconds, all threads, and the wall clock), to pass to `cpu_share_since`."""
    return time.process_time(), time.perf_counter()


def cpu_share_since(started: tuple[float, float], threads: int | None = None) -> float:
    """The share of `threads` (default: torch's) that this process kept busy since `cpu_clock()` returned
    `started`: near 1 for a measurement that had the cores to itself, much less where other processes held them."""
    cpu, wall = time.process_time() - started[0], time.perf_counter() - started[1]
    return cpu / max(wall * (threads or torch.get_num_threads()), 1e-9)


def store_probe_result(path: Path | None, key: str, result: object) -> None:
    """Add `key: result` to a probe cache file, written atomically; a read-only folder costs a probe per run."""
    if path is None:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # then renamed atomically: no one reads half a file
        tmp.write_text(json.dumps({**read_probe_cache(path), key: result}, indent=1, sort_keys=True),
                       encoding="utf-8")
        tmp.replace(path)


def cached_probe(path: Path | None, key: str, answers: tuple[str, str], probe, what: str) -> str:
    """`probe()`'s answer (one of `answers`) kept under `key` in the probe cache file `path` (None: not kept), or
    the kept one. A probe that fails means `answers[1]`, the safe default, and is not kept: probes are
    optimisations, never worth failing a run over."""
    stored = read_probe_cache(path).get(key)
    if stored in answers:
        return stored
    try:
        choice = probe()
    except Exception as err:
        log.warning("%s probe failed on %s (%s: %s); using %s", what, key, type(err).__name__, err, answers[1])
        return answers[1]
    store_probe_result(path, key, choice)
    return choice


@cache  # per process: probe (or warn) at most once per CPU and cache folder
def probed_cpu_precision(model_name: str, cache_dir: Path | None) -> str:
    """The probe's answer for this CPU model and torch version, kept in `cache_dir`'s JSON file between runs
    (None: this process only). A probe that fails means fp32, for this process only."""
    return cached_probe(cache_dir / PROBE_CACHE_FILE if cache_dir is not None else None,
                        f"{model_name} | torch {torch.__version__}", ("bf16", "fp32"),
                        probe_cpu_precision, "bf16")


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


def resolve_precision(precision: str, device: torch.device, cache_dir: Path | None = None) -> str:
    """'auto' is bf16 where the hardware computes it fast (Ampere+ GPUs, CPUs with native bf16 or where the probe
    says so), else fp16 on GPUs, fp32 on CPUs. `cache_dir` keeps the probe's answer between runs (None: the
    default `cache_folder()`)."""
    if precision not in PRECISIONS:
        raise SentimentError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    support = cpu_bf16_support()
    if support == "unclear":
        return probed_cpu_precision(cpu_model_name(), cache_dir if cache_dir is not None else cache_folder())
    return "bf16" if support == "native" else "fp32"


ATTENTION_PROBE_FILE = "explain_attention.json"  # in the probe cache folder: the IG kernel probe's answers


def probe_explain_attention(precision: str, tokens: int = 256, rows: int = 4, repeats: int = 3) -> str:
    """'eager' when plain matmul-softmax attention's forward and backward run clearly faster than the fused SDPA
    kernel's on this CPU in `precision` (BERT-like shapes: `rows` x 12 heads x `tokens` x 32), else 'sdpa'. Best of
    `repeats` after a warm-up; 0.2 s in fp32 on 2 cores of an AVX2-only EPYC (1.2 s in its emulated bf16)."""
    dtype = DTYPES[precision]
    q, k, v = (torch.randn(rows, 12, tokens, 32, dtype=dtype, requires_grad=True) for _ in range(3))

    def eager():
        weights = torch.softmax(q @ k.transpose(-1, -2) * 32 ** -0.5, dim=-1)
        return weights @ v

    seconds = {}
    for name, attention in (("eager", eager), ("sdpa", lambda: torch.nn.functional.scaled_dot_product_attention(
            q, k, v))):
        timings = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            attention().float().sum().backward()
            timings.append(time.perf_counter() - start)
        seconds[name] = min(timings[1:])
    choice = "eager" if seconds["sdpa"] >= PROBE_MIN_SPEEDUP * seconds["eager"] else "sdpa"
    log.info("IG attention probe (%s): eager %.1f ms, sdpa %.1f ms -> %s", precision, 1e3 * seconds["eager"],
             1e3 * seconds["sdpa"], choice)
    return choice


@cache  # per process: probe at most once per CPU, precision and cache folder
def probed_explain_attention(model_name: str, precision: str, cache_dir: Path | None) -> str:
    """The IG kernel probe's answer for this CPU model, precision and torch version, kept in `cache_dir` between
    runs (None: this process only). A probe that fails means SDPA, the model's default, for this process only."""
    return cached_probe(cache_dir / ATTENTION_PROBE_FILE if cache_dir is not None else None,
                        f"{model_name} | torch {torch.__version__} | {precision}", ("eager", "sdpa"),
                        lambda: probe_explain_attention(precision), "IG attention")


def explain_attention(device: torch.device, precision: str, model_attention: str, cpuinfo: str | None = None) -> str:
    """The attention kernel integrated gradients runs on; prediction keeps `model_attention`. IG's time is mostly
    backward. Measured: on an AMX Xeon in bf16 plain matmul-softmax ("eager") attention's backward was twice as fast
    as the fused SDPA kernel's; in fp32 SDPA was faster on both EPYCs met (2.50 s vs 1.77 s with AVX512, 2.07 to
    2.47 s vs 2.00 to 2.15 s with AVX2 only; docs/performance.md). bf16 on a CPU without AMX (AVX512-BF16, Arm
    BF16) was never measured, so there a probe decides, cached per CPU model (`probed_explain_attention`). GPUs keep
    the model's own kernel (not measured there)."""
    if device.type != "cpu":
        return model_attention
    if precision != "bf16":
        return "sdpa"
    if "amx_bf16" in cpu_flags(cpuinfo):
        return "eager"
    return probed_explain_attention(cpu_model_name(cpuinfo), precision, cache_folder())


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


def cpu_record() -> dict:
    """This CPU as a record shows it: model name, the RECORDED_FLAGS it has, and torch's threads."""
    return {"threads": torch.get_num_threads(), "cpu": cpu_model_name(),
            "cpu_flags": sorted(cpu_flags() & RECORDED_FLAGS)}


def describe(device: torch.device, precision: str) -> dict:
    """What a run ran on, for the resolved config and the logs: every run records its CPU and what it offers."""
    cpu = cpu_record()
    info = {"device": str(device), "precision": precision, "torch": torch.__version__, "threads": cpu["threads"],
            "cpu": cpu["cpu"], "cpu_bf16": cpu_bf16_support(), "cpu_flags": cpu["cpu_flags"]}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
