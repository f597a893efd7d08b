"""The int8 engine: the trained classifier as an int8 ONNX graph (`sentiment.onnx_export`: ONNX Runtime's fusions,
dynamic int8 quantisation), kept in the folder only once it is verified against the torch model on the test split.
Integrated gradients stay on the torch model.

The graph starts after the word-embedding lookup: the Predictor looks the rows up in the torch model's own table
and feeds them as `inputs_embeds`, so the folder does not hold its largest matrix twice (about 12 MB instead of 24).
ONNX Runtime is optional: without it, or with an engine that fails any check, everything runs on torch.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from sentiment import runtime
from sentiment.artifacts import ENGINE_INFO, read_json, sha256_file, write_json
from sentiment.errors import SentimentError
from sentiment.evaluation import calibration
from sentiment.onnx_export import OPSET, export_int8

log = logging.getLogger(__name__)

ENGINE_FILE = "model.int8.onnx"
WEIGHTS = "model.safetensors"
MAX_ACCURACY_DROP = 0.002  # 0.2 points on the test split, else the engine is not kept


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def missing_packages() -> list[str]:
    """What building an engine needs and this environment lacks (serving needs only onnxruntime)."""
    return [name for name in ("onnxruntime", "onnx", "onnxscript") if importlib.util.find_spec(name) is None]


class Int8Engine:
    """ONNX Runtime sessions of the int8 graph, with the word-embedding table they read from: one session on all
    `threads` for a single review, and for bulk work one single-thread session per thread, each taking the next
    review. One review is too small a task to keep two threads busy: on 2 cores of an AVX2-only EPYC, 300 test
    reviews ran at 27.7 reviews/s on one two-thread session and 30.9 on two one-thread sessions side by side, with
    identical logits (docs/performance.md)."""

    # How bulk calls run, in the engine probes' cache key: a probe kept from another scheme does not apply.
    BULK_SCHEME = "one review per run, on one-thread sessions side by side"

    def __init__(self, path: Path, word_embeddings: np.ndarray, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path, self.threads = Path(path), threads or torch.get_num_threads()
        self.session = self._session(self.threads)
        # Engines built before the attention fusion take a mask too (all ones: the review is unpadded).
        self.takes_mask = "attention_mask" in {graph_input.name for graph_input in self.session.get_inputs()}
        self.embeddings = np.ascontiguousarray(word_embeddings, dtype=np.float32)
        self.version = ort.__version__
        self._workers: list = []  # the one-thread sessions, made on the first bulk call
        self._workers_lock = threading.Lock()

    def _session(self, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def _run(self, session, sequence: Sequence[int]) -> np.ndarray:
        ids = np.asarray(sequence, dtype=np.int64)[None]
        feed = {"inputs_embeds": self.embeddings[ids]}
        if self.takes_mask:
            feed["attention_mask"] = np.ones_like(ids)
        return session.run(None, feed)[0][0]

    def logits(self, sequences: Sequence[Sequence[int]], progress: bool = False) -> np.ndarray:
        """Logits (n, 2) in the input order, one review per run and no padding.

        Dynamic quantisation scales each activation by its range over the whole input tensor, so in a batch a
        review's answer would depend on its batchmates and on the padding they force on it. Run alone, a review
        gets the same answer in a bulk call as on the live page, and the answer verified is the one served."""
        out = np.zeros((len(sequences), 2), dtype=np.float32)
        with tqdm(total=len(sequences), desc="predict (int8)", unit="review", disable=not progress,
                  dynamic_ncols=True) as bar:
            if len(sequences) < 2 or self.threads < 2:
                for i, sequence in enumerate(sequences):
                    out[i] = self._run(self.session, sequence)
                    bar.update()
                return out
            with self._workers_lock:
                if not self._workers:
                    self._workers = [self._session(1) for _ in range(self.threads)]
            # Longest first, each worker taking the next review: no worker is left with the long tail at the end.
            order = iter(sorted(range(len(sequences)), key=lambda i: -len(sequences[i])))
            take, stop = threading.Lock(), threading.Event()

            def work(session) -> None:
                i = None
                while not stop.is_set():
                    with take:
                        if i is not None:
                            bar.update()
                        i = next(order, None)
                    if i is None:
                        return
                    try:
                        out[i] = self._run(session, sequences[i])
                    except BaseException:
                        stop.set()  # the others stop at their next review instead of finishing the job
                        raise

            pool = ThreadPoolExecutor(len(self._workers))
            try:
                for done in [pool.submit(work, session) for session in self._workers]:
                    done.result()  # a worker's error reaches the caller (who falls back to torch)
            except BaseException:  # also Ctrl-C in the caller's thread
                stop.set()
                raise
            finally:
                pool.shutdown(wait=True)
        return out


def word_embeddings(model: PreTrainedModel) -> np.ndarray:
    return model.get_input_embeddings().weight.detach().float().cpu().numpy()


def _warn_unverified_kernels(folder: Path, verified_on: dict | None) -> None:
    """The accuracy check ran on one CPU's int8 kernels: say so where this CPU lacks the int8 dot products that CPU
    had (AVX2's pairwise sums can saturate), and how to check it here."""
    if verified_on is None:
        return
    missing = (set(verified_on.get("cpu_flags", ())) & runtime.INT8_DOT_FLAGS) - runtime.cpu_flags()
    if missing:
        log.warning("int8 engine of %s was verified on a CPU with %s, which this one lacks; its accuracy here is "
                    "unchecked (python evaluate.py int8 --artifacts %s verifies it on this CPU)", folder,
                    ", ".join(sorted(missing)), folder)


def load_engine(folder: str | Path, model: PreTrainedModel, weights_sha256: str | None = None) -> Int8Engine | None:
    """The folder's verified int8 engine, or None with a log line saying why not (no engine, not kept, made from
    other weights, ONNX Runtime missing, a file that does not load): the caller then stays on torch.
    `weights_sha256`: the weights' hash where the caller has just verified it (the manifest's), else it is hashed."""
    folder = Path(folder)
    if not (folder / ENGINE_INFO).is_file():
        return None
    try:
        info = read_json(folder / ENGINE_INFO)
        if not info.get("kept"):
            log.info("int8 engine of %s was not kept (%s); using torch", folder, info.get("reason"))
            return None
        if info.get("weights_sha256") != (weights_sha256 or sha256_file(folder / WEIGHTS)):
            log.warning("int8 engine of %s was made from other weights than %s; using torch", folder, WEIGHTS)
            return None
        if not onnxruntime_available():
            log.info("onnxruntime is not installed; using torch (pip install onnxruntime for the int8 engine)")
            return None
        _warn_unverified_kernels(folder, info.get("verified_on"))
        return Int8Engine(folder / ENGINE_FILE, word_embeddings(model))
    except Exception as err:  # a corrupt file, an old ONNX Runtime: torch answers instead, never a crash
        log.warning("int8 engine of %s failed to load (%s: %s); using torch", folder, type(err).__name__, err)
        return None


def agreement(probs: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    """How far the engine's P(positive) strays from the torch model's on the same reviews: the share of labels
    they agree on, the mean, 99th percentile and largest absolute difference, and each one's ECE (10 bins)."""
    probs, reference = np.asarray(probs, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    difference = np.abs(probs - reference)
    return {"labels_agree": float(((probs >= 0.5) == (reference >= 0.5)).mean()),
            "mean_abs_difference": float(difference.mean()),
            "p99_abs_difference": float(np.quantile(difference, 0.99)),
            "max_abs_difference": float(difference.max()),
            "ece": calibration(labels, probs)["ece"], "torch_ece": calibration(labels, reference)["ece"]}


def build_engine(folder: Path, model: PreTrainedModel, sequences: Sequence[Sequence[int]], labels: np.ndarray,
                 reference_probs: np.ndarray, progress: bool = False) -> dict:
    """Export the int8 engine into `folder`, score it on the encoded test split and keep it only if its accuracy is
    within MAX_ACCURACY_DROP of the torch model's, whose P(positive) on the same reviews is `reference_probs`. The
    engine runs as it serves (`Int8Engine.logits`), so what is verified is what users get. engine.json records the
    check either way, with how far the two models' probabilities differ (`agreement`). Needs onnxruntime and onnx."""
    missing = missing_packages()
    if missing:
        raise SentimentError(f"the int8 engine needs {', '.join(missing)}: pip install onnxruntime onnx onnxscript")
    if not len(sequences):
        raise SentimentError("the int8 engine needs test reviews to be verified on; none were given")
    labels, reference_probs = np.asarray(labels), np.asarray(reference_probs, dtype=np.float64)
    if reference_probs.shape != (len(sequences),) or labels.shape != (len(sequences),):
        raise SentimentError(f"the int8 engine is verified on {len(sequences)} reviews but got {labels.shape[0]} "
                             f"labels and {reference_probs.shape[0]} torch probabilities")
    path = folder / ENGINE_FILE
    export_int8(model, path)
    engine = Int8Engine(path, word_embeddings(model))
    logits = engine.logits(sequences, progress=progress)
    probs = torch.softmax(torch.from_numpy(logits).double(), -1)[:, 1].numpy()
    accuracy = float(((probs >= 0.5) == labels).mean())
    reference_accuracy = float(((reference_probs >= 0.5) == labels).mean())
    kept = accuracy >= reference_accuracy - MAX_ACCURACY_DROP
    info = {"file": ENGINE_FILE, "kept": kept, "onnxruntime": engine.version, "opset": OPSET,
            "quantisation": "dynamic int8, weights per channel, after ONNX Runtime's BERT fusions",
            "weights_sha256": sha256_file(folder / WEIGHTS), "n": len(sequences), "accuracy": accuracy,
            "torch_accuracy": reference_accuracy, "max_drop": MAX_ACCURACY_DROP,
            "agreement": agreement(probs, reference_probs, labels),
            # int8 kernels differ by CPU (VNNI/AMX dot products, or AVX2's, which can saturate), so the check holds for
            # the kind of CPU that ran it
            "verified_on": runtime.cpu_record(),
            "reason": None if kept else f"accuracy {accuracy:.4f} is more than {MAX_ACCURACY_DROP} below torch's "
                                        f"{reference_accuracy:.4f}"}
    if not kept:
        path.unlink()
    write_json(folder / ENGINE_INFO, info)
    log.info("int8 engine: accuracy %.4f on %d test reviews against torch's %.4f -> %s", accuracy, len(sequences),
             reference_accuracy, "kept" if kept else "not kept")
    return info
