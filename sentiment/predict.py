"""Predictor: load a trained model once, then predict a review or a list of reviews."""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from sentiment import runtime
from sentiment.artifacts import TRAINING_CONFIG, read_json, verify_manifest
from sentiment.config import ID2LABEL, PREDICTOR_PRECISIONS, TORCH_TOKENS_PER_BATCH, stored_setting
from sentiment.engine import ENGINE_FILE, ENGINE_INFO, WEIGHTS, Int8Engine, load_engine
from sentiment.errors import SentimentError
from sentiment.modeling import first_position_logits, load_tokenizer, takes_first_position_path
from sentiment.text import Encoder, pad_batch, token_budget_batches

log = logging.getLogger(__name__)

ENGINE_MIN_SPEEDUP = 1.1
# Under "auto" each kind of request gets the engine its probe measures faster: on an AMX Xeon the int8 engine won a
# single review (the live page) but torch bf16 won bulk work, 37.4 against 25.4 reviews/s (docs/performance.md;
# measured before the engine ran bulk work on one-thread sessions side by side and with attention fused).
# The probes: (lengths, reviews per call, timed calls after a warm-up) for one review, and for a batch of
# median-length reviews (which torch runs as one batch and the engine one review at a time, as it always does).
PROBES = {"single": ((64, 256), 1, 3), "bulk": ((256,), 4, 2)}
ENGINE_PROBE_FILE = "engine_probes.json"  # in runtime.cache_folder(): the probes' times, per CPU model and files
MAX_TEXT_CHARS = 100_000  # ~20x the longest IMDB review; beyond it tokenising alone would stall a small server


def takes(text: object) -> bool:
    """Whether `check_text` accepts the text (bulk scoring leaves a row it refuses unscored, with a warning)."""
    try:
        check_text(text)
    except SentimentError:
        return False
    return True


def check_text(text: object) -> str:
    """A review the model can take, or a SentimentError that says what is wrong with it."""
    if not isinstance(text, str):
        raise SentimentError(f"a review must be text, not {type(text).__name__}")
    if not any(ch.isprintable() and not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text):
        raise SentimentError("the review is empty; type or paste some text")
    if len(text) > MAX_TEXT_CHARS:
        raise SentimentError(f"the review has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}. "
                             f"Shorten it (the model reads at most its first and last few hundred words anyway)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate, e.g. a "\ud800" escape in an API request's JSON
        raise SentimentError(f"the review is not valid Unicode: it holds an unpaired surrogate "
                             f"(U+{ord(text[err.start]):04X}) at character {err.start}") from None
    return text


@torch.inference_mode()
def batched_logits(model: PreTrainedModel, sequences: Sequence[Sequence[int]], pad_token_id: int,
                   device: torch.device, tokens_per_batch: int = TORCH_TOKENS_PER_BATCH, pad_to_multiple_of: int = 16,
                   precision: str = "fp32", progress: bool = False) -> np.ndarray:
    """Logits (n, num_labels) as float32 in the input order, from length-sorted token-budget batches.

    `precision` autocasts (training keeps fp32 weights); a model already cast to bf16 needs none.
    """
    logits = np.zeros((len(sequences), model.config.num_labels), dtype=np.float32)
    lengths = [len(s) for s in sequences]
    batches = list(token_budget_batches(lengths, tokens_per_batch, pad_to_multiple_of))
    model_was_training = model.training
    model.eval()
    shortcut = takes_first_position_path(model)  # BERT: the last layer at the one row its pooler reads
    with runtime.autocast(device, precision):
        for batch in tqdm(batches, desc="predict", unit="batch", disable=not progress, dynamic_ncols=True):
            inputs = pad_batch([sequences[i] for i in batch], pad_token_id, pad_to_multiple_of)
            inputs = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
            out = first_position_logits(model, **inputs) if shortcut else model(**inputs).logits
            logits[batch] = out.float().cpu().numpy()
    model.train(model_was_training)
    return logits


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class Predictor:
    """A classifier and its encoder, with batched, length-sorted inference."""

    def __init__(self, model: PreTrainedModel, encoder: Encoder, device: str | torch.device = "auto",
                 precision: str = "auto", tokens_per_batch: int = TORCH_TOKENS_PER_BATCH, pad_to_multiple_of: int = 16,
                 engine: Int8Engine | None = None) -> None:
        self.device = device if isinstance(device, torch.device) else runtime.resolve_device(device)
        # The torch model's precision (explanations always run on it); `engine` answers predictions when given.
        self.precision = runtime.resolve_precision("auto" if precision == "int8" else precision, self.device)
        self.engine = engine
        self.engine_serves = set(PROBES)  # the kinds of request the engine answers, where there is one
        # Whole-model weights in the serving dtype beat autocast at inference: no per-call weight conversion.
        # from_artifacts loads them in that dtype already, so this moves nothing there.
        self.model = model.to(device=self.device, dtype=runtime.DTYPES[self.precision]).eval()
        self.model.requires_grad_(False)  # inference only; explanations need gradients of inputs, not weights
        # Captum's hooks on the embedding layer would also catch a prediction running beside an explanation.
        self.lock = threading.RLock()
        self.encoder = encoder
        self.tokens_per_batch = tokens_per_batch  # the torch model's inference batches
        self.pad_to_multiple_of = pad_to_multiple_of

    @classmethod
    def from_artifacts(cls, path: str | Path, device: str = "auto", precision: str = "auto",
                       verify: bool = True) -> Predictor:
        """Load a folder written by train.py, after checking its manifest; truncation as in training.

        `precision`: "auto" (bf16 or fp32 for this CPU, and the folder's int8 engine for each kind of request,
        one review or bulk, where a probe measures it faster: `PROBES`), "int8" (the engine whenever it loads), or a
        torch precision ("bf16", "fp16", "fp32")."""
        path = Path(path)
        if precision not in PREDICTOR_PRECISIONS:
            raise SentimentError(f"--precision must be one of {', '.join(PREDICTOR_PRECISIONS)}, not {precision!r}")
        if precision == "int8" and not (path / ENGINE_INFO).is_file():
            raise SentimentError(f"{path}: no int8 engine here; build one with python evaluate.py int8 "
                                 f"--artifacts {path}, or use --precision auto")
        files = {}
        if verify:
            files = verify_manifest(path)["files"]
        elif not (path / "config.json").is_file():
            raise SentimentError(f"{path}: no trained model here; run train.py or pass the artifacts folder")
        config = read_json(path / TRAINING_CONFIG)["config"] if (path / TRAINING_CONFIG).is_file() else {}
        resolved_device = runtime.resolve_device(device)
        dtype = runtime.DTYPES[runtime.resolve_precision("auto" if precision == "int8" else precision,
                                                         resolved_device)]
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype, use_safetensors=True,
                                                                   attn_implementation="sdpa")
        encoder = Encoder(load_tokenizer(str(path)), max_length=stored_setting(config, "max_length"),
                          truncation=stored_setting(config, "truncation"),
                          head_ratio=stored_setting(config, "head_ratio"))
        predictor = cls(model, encoder, device=resolved_device, precision=precision)
        if precision in ("auto", "int8") and resolved_device.type == "cpu":
            engine = load_engine(path, predictor.model, files.get(WEIGHTS, {}).get("sha256"))
            if engine is not None:
                serves = set(PROBES) if precision == "int8" else \
                    {kind for kind, (lengths, rows, repeats) in PROBES.items()
                     if predictor.engine_is_faster(engine, lengths, repeats, rows,
                                                   cache_key=predictor.engine_probe_key(engine, kind, files))}
                if serves:
                    predictor.engine, predictor.engine_serves = engine, serves
            elif precision == "int8":  # asked for by name: say so louder than load_engine's reason
                log.warning("precision int8 was asked for, but the int8 engine of %s does not load (see above); "
                            "torch answers, and evaluations record it", path)
        return predictor

    def engine_probe_seconds(self, engine: Int8Engine, lengths: Sequence[int] = (64, 256), repeats: int = 3,
                             rows: int = 1) -> tuple[float, float]:
        """Seconds of the torch model and of `engine` on `rows` reviews of each length, each engine batched as it
        serves (best of `repeats` after a warm-up, summed over lengths)."""
        def seconds(run) -> float:
            total = 0.0
            for n in lengths:
                ids = [[self.encoder.tokenizer.cls_token_id or 0] * n] * rows
                times = []
                for _ in range(repeats + 1):
                    start = time.perf_counter()
                    run(ids)
                    times.append(time.perf_counter() - start)
                total += min(times[1:])
            return total

        return seconds(lambda ids: self._torch_logits(ids)), seconds(lambda ids: self._engine_logits(engine, ids))

    def engine_is_faster(self, engine: Int8Engine, lengths: Sequence[int] = (64, 256), repeats: int = 3,
                         rows: int = 1, cache_key: str | None = None) -> bool:
        """Whether `engine` beats the torch model by ENGINE_MIN_SPEEDUP in `engine_probe_seconds`. On 2 cores of an
        AMX Xeon the single-review probe took about a third of a second and the bulk probe 0.67 s, so with a
        `cache_key` the times are kept in the probe cache (`runtime.cache_folder()`) and the next load on the same
        CPU, threads, versions and files reads them instead. A probe that fails means torch, and is not kept; nor is
        one that ran while other processes held the cores (`runtime.PROBE_MIN_CPU_SHARE`)."""
        folder = runtime.cache_folder() if cache_key else None
        path = folder / ENGINE_PROBE_FILE if folder is not None else None
        stored = runtime.read_probe_cache(path).get(cache_key)
        if isinstance(stored, list) and len(stored) == 2 and all(isinstance(s, float) and s > 0 for s in stored):
            (torch_s, engine_s), source = stored, f"kept in {path}"
        else:
            started = runtime.cpu_clock()
            try:
                torch_s, engine_s = self.engine_probe_seconds(engine, lengths, repeats, rows)
            except Exception as err:  # the probe is an optimisation, never worth failing a load over
                log.warning("int8 engine probe failed (%s: %s); using torch", type(err).__name__, err)
                return False
            source, share = "measured", runtime.cpu_share_since(started)
            if cache_key and share < runtime.PROBE_MIN_CPU_SHARE:
                # Under load the engines rank differently than on an idle machine (torch's threads suffer most):
                # right for now, perhaps wrong for the next start, which measures again.
                log.warning("int8 engine probe ran while other processes held the CPU (it got %.0f %% of its "
                            "threads' time); its choice holds for this load and is not kept", 100 * share)
            elif cache_key:
                runtime.store_probe_result(path, cache_key, [torch_s, engine_s])
        faster = torch_s >= ENGINE_MIN_SPEEDUP * engine_s
        log.info("int8 engine probe (%s), %d review(s) of %s tokens: torch %s %.1f ms, int8 %.1f ms -> %s", source,
                 rows, "/".join(map(str, lengths)), self.precision, 1e3 * torch_s, 1e3 * engine_s,
                 "int8" if faster else "torch")
        return faster

    def engine_probe_key(self, engine: Int8Engine, kind: str, files: dict) -> str | None:
        """What an engine probe's result depends on: CPU model, threads, versions, precision, the probe and the
        two weight files (by the manifest's hashes); None without those hashes (nothing is then kept)."""
        hashes = {name: files.get(name, {}).get("sha256") for name in (WEIGHTS, ENGINE_FILE)}
        if not all(hashes.values()):
            return None
        lengths, rows, repeats = PROBES[kind]
        return " | ".join([runtime.cpu_model_name(), f"{torch.get_num_threads()} threads",
                           f"torch {torch.__version__} {self.precision}", f"onnxruntime {engine.version}",
                           f"int8 bulk: {engine.BULK_SCHEME}",
                           f"{kind}: {rows} x {'/'.join(map(str, lengths))} tokens",
                           *(f"{name} {digest[:16]}" for name, digest in hashes.items())])

    def serves(self, n: int) -> Int8Engine | None:
        """The engine that answers a request of `n` reviews, or None for torch."""
        return self.engine if self.engine is not None and ("single" if n == 1 else "bulk") in self.engine_serves \
            else None

    def describe(self, n: int = 2) -> dict:
        """What serves a request of `n` reviews (by default bulk work), for the records of an evaluation."""
        engine = {"engine": "onnxruntime int8", "onnxruntime": self.engine.version} if self.serves(n) else \
            {"engine": "torch"}
        return {**engine, **runtime.describe(self.device, self.precision)}

    def _engine_logits(self, engine: Int8Engine, sequences: Sequence[Sequence[int]],
                       progress: bool = False) -> np.ndarray:
        return engine.logits(sequences, progress=progress)

    def _torch_logits(self, sequences: Sequence[Sequence[int]], progress: bool = False) -> np.ndarray:
        return batched_logits(self.model, sequences, self.encoder.pad_token_id, self.device, self.tokens_per_batch,
                              self.pad_to_multiple_of, progress=progress)

    def logits_encoded(self, sequences: Sequence[Sequence[int]], progress: bool = False) -> np.ndarray:
        """Logits (n, 2) for already-encoded inputs, in their original order."""
        with self.lock:
            engine = self.serves(len(sequences))
            if engine is not None:
                try:
                    return self._engine_logits(engine, sequences, progress=progress)
                except Exception as err:  # an engine that breaks at run time: torch from now on, never a crash
                    log.warning("int8 engine failed (%s: %s); using torch from now on", type(err).__name__, err)
                    self.engine = None
            return self._torch_logits(sequences, progress=progress)

    def predict_encoded(self, sequences: Sequence[Sequence[int]], progress: bool = False) -> np.ndarray:
        """Probabilities (n, 2) for already-encoded inputs, in their original order."""
        return softmax(self.logits_encoded(sequences, progress=progress))

    def predict_proba(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Probabilities (n, 2) of negative and positive for each text."""
        return self.predict_encoded(self.encoder.encode([check_text(t) for t in texts]), progress=progress)

    def predict(self, texts: str | Sequence[str]) -> dict | list[dict]:
        """{'label', 'probabilities': {'negative', 'positive'}} for a string; a list of those for a list."""
        single = isinstance(texts, str)
        probs = self.predict_proba([texts] if single else list(texts))
        results = [{"label": ID2LABEL[int(p[1] >= 0.5)],  # as every evaluation decides: a tie is positive
                    "probabilities": {ID2LABEL[0]: float(p[0]), ID2LABEL[1]: float(p[1])}} for p in probs]
        return results[0] if single else results
