"""Distributed training: torchrun with 2 CPU processes (gloo) takes the steps a single process takes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import train
from sentiment import checkpoint, distributed

REPO = Path(__file__).resolve().parents[1]
# 36 train reviews in global batches of 7: five full batches and a last one of a single review, which leaves
# the second rank with a zero-weight stand-in.
FLAGS = ["--batch-size", "7", "--max-length", "128", "--validation-split", "0.25", "--learning-rate", "1e-3",
         "--epochs", "2", "--precision", "fp32", "--device", "cpu", "--num-threads", "1", "--no-progress",
         "--save-dtype", "fp32", "--no-fairness"]
NO_DROPOUT = ["--hidden-dropout", "0"]


def two(rank: int) -> distributed.Context:
    return distributed.Context(rank=rank, world=2, local_rank=rank)


def test_shards_split_each_batch_without_overlap():
    batch = [5, 3, 9, 1, 7]
    shards = [distributed.shard(batch, two(rank)) for rank in (0, 1)]
    assert all(counts for _, counts in shards)
    assert sorted(shards[0][0] + shards[1][0]) == sorted(batch)
    assert not set(shards[0][0]) & set(shards[1][0])
    assert distributed.shard([4], two(1)) == ([4], False)  # a stand-in, with no weight
    assert distributed.shard(batch, distributed.Context()) == (batch, True)


def test_shares_of_the_mean_average_to_the_gradient_of_the_whole_batch():
    torch.manual_seed(0)
    weight = torch.randn(4, 2, requires_grad=True)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1])
    F.cross_entropy(x @ weight, y).backward()
    whole = weight.grad.clone()
    grads = []
    for rank in (0, 1):
        weight.grad = None
        own, counts = distributed.shard(list(range(5)), two(rank))  # 3 and 2 examples: unequal shards
        summed = F.cross_entropy(x[own] @ weight, y[own], reduction="sum")
        distributed.share_of_mean(summed, 5, counts, two(rank)).backward()
        grads.append(weight.grad.clone())
    torch.testing.assert_close((grads[0] + grads[1]) / 2, whole)  # what DDP's all-reduce average computes

    weight.grad = None
    own, counts = distributed.shard([3], two(1))
    distributed.share_of_mean(F.cross_entropy(x[own] @ weight, y[own], reduction="sum"), 1, counts,
                              two(1)).backward()
    assert torch.count_nonzero(weight.grad) == 0


def test_gather_rows_is_the_identity_for_one_process():
    rows = np.arange(6.0).reshape(3, 2)
    assert distributed.gather_rows(rows, 3, distributed.Context()) is rows


def ddp_worker(rank: int, store: str, results: dict) -> None:
    """One of two gloo processes: DDP gradients of shares of global batches, and gathered rows."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    context = two(rank)
    torch.manual_seed(0)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1])
    model = distributed.wrap(torch.nn.Linear(4, 2), context, torch.device("cpu"))
    grads = []
    for batch in ([0, 1, 2, 3, 4], [2]):  # unequal shards (3 and 2), then a stand-in on rank 1
        model.zero_grad()
        own, counts = distributed.shard(batch, context)
        summed = F.cross_entropy(model(x[own]), y[own], reduction="sum")
        distributed.share_of_mean(summed, len(batch), counts, context).backward()
        grads.append(model.module.weight.grad.clone())
    n_rows = 7
    gathered = distributed.gather_rows(np.arange(n_rows * 2.0).reshape(n_rows, 2)[rank::2], n_rows, context)
    totals = distributed.sum_across([rank + 1.0, 1.0], context)
    results[rank] = (grads, gathered, totals)
    dist.destroy_process_group()


def test_ddp_all_reduce_gives_the_gradient_of_the_whole_batch(tmp_path):
    import torch.multiprocessing as mp

    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(ddp_worker, args=(str(tmp_path / "store"), results), nprocs=2)
        results = dict(results)
    torch.manual_seed(0)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1])
    model = torch.nn.Linear(4, 2)
    expected = []
    for batch in ([0, 1, 2, 3, 4], [2]):
        model.zero_grad()
        F.cross_entropy(model(x[batch]), y[batch]).backward()
        expected.append(model.weight.grad.clone())
    for rank in (0, 1):
        grads, gathered, totals = results[rank]
        for got, want in zip(grads, expected, strict=True):
            torch.testing.assert_close(got, want)
        np.testing.assert_array_equal(gathered, np.arange(14.0).reshape(7, 2))
        assert totals == [3.0, 2.0]


def test_threads_are_split_between_the_processes_of_a_machine(monkeypatch):
    from sentiment import runtime

    before = torch.get_num_threads()
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2, 3}, raising=False)
    try:
        runtime.set_threads(None, share=2)
        assert torch.get_num_threads() == 2
        runtime.set_threads(None, share=8)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_fairness_only_refuses_torchrun(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert train.main(["--fairness-only", "--output-dir", str(tmp_path)]) == 2
    assert "not torchrun" in capsys.readouterr().err


# --- end to end ------------------------------------------------------------------------------------------------


def argv(data: Path, model: Path, folder: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--model", str(model), "--output-dir", str(folder / "artifacts"),
            "--checkpoint-dir", str(folder / "checkpoints"), *FLAGS, *extra]


def torchrun(flags: list[str], log: Path) -> subprocess.Popen:
    """torchrun with 2 CPU processes; its output goes to `log` (a pipe nobody reads could fill and block it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                                 "2", "train.py", *flags], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def run_to_end(flags: list[str], log: Path) -> str:
    process = torchrun(flags, log)
    process.wait(timeout=600)
    output = log.read_text()
    assert process.returncode == 0, output[-3000:]
    return output


@pytest.fixture(scope="module")
def single(small_imdb: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One process, no dropout: with it, ranks draw other masks than one process, and the runs could only be
    compared statistically."""
    folder = tmp_path_factory.mktemp("single_process")
    assert train.main(argv(small_imdb, tiny_model_dir, folder, *NO_DROPOUT)) == 0
    return folder


def assert_same_training(folder: Path, reference: Path, initial: Path) -> None:
    """Same weights, history and test predictions as `reference`, up to float summation order."""
    ours, theirs = (load_file(f / "artifacts" / "model.safetensors") for f in (folder, reference))
    assert ours.keys() == theirs.keys()
    # Attention key biases are skipped: softmax ignores them, so their gradient is rounding noise that Adam
    # scales up to full-size steps, different for every summation order. All else agrees to ~1e-7.
    compared = [name for name in theirs if not name.endswith("attention.self.key.bias")]
    for name in compared:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-6, msg=name)
    start = load_file(initial / "model.safetensors")
    assert min(float((theirs[n] - start[n]).abs().max()) for n in compared) > 1e-3  # every tensor was trained
    history = [json.loads((f / "artifacts" / "history.json").read_text()) for f in (folder, reference)]
    assert history[0]["best_epoch"] == history[1]["best_epoch"]
    for a, b in zip(history[0]["epochs"], history[1]["epochs"], strict=True):
        assert a["step"] == b["step"]
        for key in ("train_loss", "train_accuracy", "eval_loss", "eval_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    predictions = [pd.read_parquet(f / "artifacts" / "test_predictions.parquet") for f in (folder, reference)]
    np.testing.assert_allclose(predictions[0]["prob_positive"], predictions[1]["prob_positive"], atol=1e-5)


@pytest.mark.slow
def test_two_processes_train_as_one(small_imdb, tiny_model_dir, single, tmp_path):
    output = run_to_end(argv(small_imdb, tiny_model_dir, tmp_path, *NO_DROPOUT), tmp_path / "torchrun.log")
    assert "each global batch shared by 2 processes" in output
    assert output.count("\nartifacts written to") == 1  # rank 0 alone writes and reports
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == \
        sorted(p.name for p in (single / "artifacts").iterdir())
    assert_same_training(tmp_path, single, tiny_model_dir)


@pytest.fixture(scope="module")
def two_with_dropout(small_imdb: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 2-process run of the tiny model with its dropout."""
    folder = tmp_path_factory.mktemp("two_with_dropout")
    run_to_end(argv(small_imdb, tiny_model_dir, folder), folder / "torchrun.log")
    return folder


@pytest.mark.slow
def test_two_processes_resume_after_sigkill(small_imdb, tiny_model_dir, two_with_dropout, tmp_path):
    """Killed mid-epoch and resumed, a run with dropout repeats the uninterrupted one (dropout draws follow
    seed, rank and step)."""
    flags = argv(small_imdb, tiny_model_dir, tmp_path, "--checkpoint-minutes", "0")
    process = torchrun(flags, tmp_path / "killed.log")
    try:
        state_file = tmp_path / "checkpoints" / checkpoint.CHECKPOINT
        deadline = time.monotonic() + 300
        while not state_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)  # the first checkpoint comes after the first step: kill the run mid-epoch
        for pid in [process.pid, *descendants(process.pid)]:  # torchrun starts its workers in their own sessions
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, \
        f"torchrun ended before it could be killed:\n{(tmp_path / 'killed.log').read_text()[-3000:]}"
    assert not (tmp_path / "artifacts").exists()

    output = run_to_end([*flags, "--resume"], tmp_path / "resumed.log")
    assert "resumed from" in output
    assert_same_training(tmp_path, two_with_dropout, tiny_model_dir)



def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        children = parents.get(queue.pop(), [])
        found += children
        queue += children
    return found
