"""Distributed training through accelerate: 2 CPU processes (gloo) take the steps a single process takes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import train
from sentiment import checkpoint, training

REPO = Path(__file__).resolve().parents[1]
# small_imdb holds 48 train reviews; a random quarter (12) is held out for validation, leaving 36 in global batches
# of 7: five full batches and a last one of a single review, which leaves the second process a zero-weight stand-in.
STEPS_PER_EPOCH, EPOCHS = 6, 2
FLAGS = ["--batch-size", "7", "--max-length", "128", "--validation-split", "0.25", "--validation-grouping", "random",
         "--learning-rate", "1e-3", "--epochs", str(EPOCHS), "--precision", "fp32", "--device", "cpu",
         "--num-threads", "1", "--no-progress", "--save-dtype", "fp32", "--no-fairness", "--no-int8"]
NO_DROPOUT = ["--hidden-dropout", "0"]
# accelerate's --cpu picks its simple launcher, which starts ONE process unless given an MPI hostfile; --multi_gpu
# starts torchrun workers, and train.py's --device cpu makes each an Accelerator(cpu=True): MULTI_CPU over gloo.
# Port 0: a free port, so that concurrent runs on the machine do not collide on 29500.
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]


def process(index: int, world: int = 2) -> SimpleNamespace:
    """What `training._shard` reads of an Accelerator."""
    return SimpleNamespace(process_index=index, num_processes=world)


def test_shards_split_an_odd_batch_without_overlap():
    batch = [5, 3, 9, 1, 7]
    (own0, weight0), (own1, weight1) = (training._shard(batch, process(i)) for i in (0, 1))
    assert sorted(own0 + own1) == sorted(batch)
    assert not set(own0) & set(own1)
    assert (len(own0), len(own1)) == (3, 2)
    assert weight0 == weight1 == pytest.approx(2 / 5)  # world / len(batch): DDP's average is then the batch mean


def test_a_process_without_examples_runs_a_stand_in_of_weight_zero():
    assert training._shard([4], process(1)) == ([4], 0.0)
    assert training._shard([4], process(0)) == ([4], pytest.approx(2.0))
    assert training._shard([4, 6], process(1, world=3)) == ([6], pytest.approx(1.5))
    assert training._shard([4, 6], process(2, world=3)) == ([4], 0.0)


def test_one_process_trains_on_the_whole_batch():
    batch = [5, 3, 9, 1, 7]
    assert training._shard(batch, process(0, world=1)) == (batch, pytest.approx(1 / 5))


def shard_gradients(weight: torch.Tensor, x: torch.Tensor, y: torch.Tensor, batch: list[int]) -> list[torch.Tensor]:
    """The gradient of each of 2 processes' weighted summed loss on its shard of `batch`."""
    grads = []
    for index in (0, 1):
        weight.grad = None
        own, share = training._shard(batch, process(index))
        (F.cross_entropy(x[own] @ weight, y[own], reduction="sum") * share).backward()
        grads.append(weight.grad.clone())
    return grads


def test_weighted_shares_average_to_the_gradient_of_the_whole_batch():
    torch.manual_seed(0)
    weight = torch.randn(4, 2, requires_grad=True)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1])
    for batch in ([0, 1, 2, 3, 4], [3]):  # unequal shards (3 and 2), then a stand-in on the second process
        weight.grad = None
        F.cross_entropy(x[batch] @ weight, y[batch]).backward()
        whole = weight.grad.clone()
        grads = shard_gradients(weight, x, y, batch)
        torch.testing.assert_close((grads[0] + grads[1]) / 2, whole)  # what DDP's all-reduce average computes
    assert torch.count_nonzero(grads[1]) == 0  # the stand-in adds nothing


def ddp_worker(index: int, store: str, results: dict) -> None:
    """One of two gloo processes: DDP gradients of its weighted shares of global batches."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=index, world_size=2)
    torch.manual_seed(0)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1])
    model = DistributedDataParallel(torch.nn.Linear(4, 2))
    grads = []
    for batch in ([0, 1, 2, 3, 4], [2]):  # unequal shards (3 and 2), then a stand-in on the second process
        model.zero_grad()
        own, weight = training._shard(batch, process(index))
        (F.cross_entropy(model(x[own]), y[own], reduction="sum") * weight).backward()
        grads.append([model.module.weight.grad.clone(), model.module.bias.grad.clone()])
    results[index] = grads
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
        expected.append([model.weight.grad.clone(), model.bias.grad.clone()])
    for index in (0, 1):
        for got, want in zip(results[index], expected, strict=True):
            torch.testing.assert_close(got, want)


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


# --- end to end ------------------------------------------------------------------------------------------------


def argv(data: Path, model: Path, folder: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--model", str(model), "--output-dir", str(folder / "artifacts"),
            "--checkpoint-dir", str(folder / "checkpoints"), *FLAGS, *extra]


def launch(flags: list[str], log: Path) -> subprocess.Popen:
    """accelerate launch with 2 CPU processes; output goes to `log` (a pipe nobody reads could fill and block it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("w") as out:
        return subprocess.Popen([*LAUNCH, "train.py", *flags], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def run_to_end(flags: list[str], log: Path) -> str:
    process = launch(flags, log)
    process.wait(timeout=600)
    output = log.read_text()
    assert process.returncode == 0, output[-3000:]
    assert "each global batch shared by 2 processes" in output, output[-3000:]  # not one process launched alone
    return output


@pytest.fixture(scope="module")
def single(small_imdb: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One process, no dropout: with it, processes draw other masks than one process, and the runs could only be
    compared statistically."""
    folder = tmp_path_factory.mktemp("single_process")
    assert train.main(argv(small_imdb, tiny_model_dir, folder, *NO_DROPOUT)) == 0
    return folder


def read_artifacts(folder: Path) -> tuple[dict, dict, pd.DataFrame, dict]:
    artifacts = folder / "artifacts"
    return (load_file(artifacts / "model.safetensors"), json.loads((artifacts / "history.json").read_text()),
            pd.read_parquet(artifacts / "evaluations" / "test" / "predictions.parquet"),
            json.loads((artifacts / "calibration.json").read_text()))


def assert_same_training(folder: Path, reference: Path, initial: Path) -> None:
    """Same weights, history, temperature and test predictions as `reference`, up to float summation order."""
    (ours, history, predictions, calibration), (theirs, *expected) = map(read_artifacts, (folder, reference))
    assert ours.keys() == theirs.keys()
    # Attention key biases are skipped: softmax ignores them, so their gradient is rounding noise that Adam
    # scales up to full-size steps, different for every summation order. All else agrees to ~1e-7.
    compared = [name for name in theirs if not name.endswith("attention.self.key.bias")]
    # Trained is judged on the best epoch's weights before calibration: folding T alone moves an untrained head.
    start, best = load_file(initial / "model.safetensors"), torch.load(reference / "checkpoints" / checkpoint.BEST)
    for name in compared:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-6, msg=name)
        # Every tensor was trained, ten times further than that tolerance, so agreeing within it says something.
        # (Relative to the tolerance, not a fixed step: the classifier bias, near zero, moves least of all.)
        moved = float((best[name] - start[name]).abs().max())
        assert moved > 10 * (1e-6 + 1e-4 * float(theirs[name].abs().max())), (name, moved)
    assert history["best_epoch"] == expected[0]["best_epoch"]
    for a, b in zip(history["epochs"], expected[0]["epochs"], strict=True):
        assert a["step"] == b["step"]
        for key in ("train_loss", "train_accuracy", "eval_loss", "eval_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    assert calibration["temperature"] == pytest.approx(expected[2]["temperature"], rel=1e-4)
    # `predicted` left out: a probability within rounding of 0.5 may fall on either side of it.
    pd.testing.assert_frame_equal(predictions.drop(columns=["prob_positive", "predicted"]),
                                  expected[1].drop(columns=["prob_positive", "predicted"]))
    np.testing.assert_allclose(predictions["prob_positive"], expected[1]["prob_positive"], atol=1e-5)


@pytest.mark.slow
def test_two_processes_train_as_one(small_imdb, tiny_model_dir, single, tmp_path):
    """Calibration stays on (the default) in both runs: the folder compared is then the one a 2-process run ships,
    temperature fitted by the main process on its validation split and folded into the classifier."""
    output = run_to_end(argv(small_imdb, tiny_model_dir, tmp_path, *NO_DROPOUT), tmp_path / "launch.log")
    assert output.count("\nartifacts written to") == 1  # the main process alone writes and reports
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == \
        sorted(p.name for p in (single / "artifacts").iterdir())
    assert_same_training(tmp_path, single, tiny_model_dir)


@pytest.fixture(scope="module")
def two_with_dropout(small_imdb: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 2-process run of the tiny model with its dropout."""
    folder = tmp_path_factory.mktemp("two_with_dropout")
    run_to_end(argv(small_imdb, tiny_model_dir, folder), folder / "launch.log")
    return folder


@pytest.mark.slow
def test_two_processes_resume_after_sigkill(small_imdb, tiny_model_dir, two_with_dropout, tmp_path):
    """Killed mid-epoch and resumed, a run with dropout repeats the uninterrupted one (dropout draws follow
    seed, process and step)."""
    flags = argv(small_imdb, tiny_model_dir, tmp_path, "--checkpoint-minutes", "0")
    process = launch(flags, tmp_path / "killed.log")
    state_file = tmp_path / "checkpoints" / checkpoint.CHECKPOINT
    try:
        deadline = time.monotonic() + 300
        while not state_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)  # the first checkpoint comes after the first step: kill the run mid-epoch
        for pid in [process.pid, *descendants(process.pid)]:  # torchrun starts its workers in their own sessions
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, \
        f"the launcher ended before it could be killed:\n{(tmp_path / 'killed.log').read_text()[-3000:]}"
    assert not (tmp_path / "artifacts").exists()
    reached = torch.load(state_file, weights_only=True)["state"]["global_step"]
    assert reached < STEPS_PER_EPOCH * EPOCHS, "killed after its last step: nothing was left to resume"

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
