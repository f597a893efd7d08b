"""Run the behavioural suite on a model and report the failure rate of every test with its 95 % Wilson
interval and an example failure, and the mean per capability. Sentences only, all generated: no user text."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from sentiment.behaviour import NOT_NEGATIVE_BAND, BehaviourTest, build_suite
from sentiment.evaluation import wilson_interval

log = logging.getLogger(__name__)

ScoreFn = Callable[[Sequence[str]], np.ndarray]  # texts -> P(positive)
NEUTRAL_RULE = (f"A binary model has no neutral class: an MFT expecting 'not negative' passes when P(positive) "
                f">= {NOT_NEGATIVE_BAND} (positive, or in the middle band {NOT_NEGATIVE_BAND}-0.5).")


def failures(test: BehaviourTest, probs: np.ndarray) -> np.ndarray:
    """Which cases fail, from P(positive) of the test's texts in `texts_of(test)` order."""
    if test.kind == "MFT":
        if test.expected == "positive":
            return probs < 0.5
        if test.expected == "negative":
            return probs >= 0.5
        return probs < NOT_NEGATIVE_BAND
    before, after = probs[0::2], probs[1::2]
    if test.kind == "INV":
        if test.tolerance is None:
            return (before >= 0.5) != (after >= 0.5)
        return np.abs(after - before) > test.tolerance
    up = np.array([test.direction[i] == "up" for i in range(len(test.cases))])
    return np.where(up, after < before - test.tolerance, after > before + test.tolerance)


def texts_of(test: BehaviourTest) -> list[str]:
    return list(test.cases) if test.kind == "MFT" else [t for pair in test.cases for t in pair]


def _example(test: BehaviourTest, failed: np.ndarray, probs: np.ndarray) -> dict | None:
    if not failed.any():
        return None
    i = int(np.flatnonzero(failed)[0])
    if test.kind == "MFT":
        return {"text": test.cases[i], "p_positive": round(float(probs[i]), 4)}
    return {"text": test.cases[i][0], "p_positive": round(float(probs[2 * i]), 4), "changed": test.cases[i][1],
            "changed_p_positive": round(float(probs[2 * i + 1]), 4)}


def behaviour_report(score: ScoreFn, seed: int = 0, n: int = 200) -> dict:
    """Every test's failure rate with its interval and an example failure; means per capability and overall."""
    tests = build_suite(seed, n)
    texts = [t for test in tests for t in texts_of(test)]
    probs = np.asarray(score(texts), dtype=np.float64)
    rows, start = [], 0
    for test in tests:
        own = probs[start:start + len(texts_of(test))]
        start += len(own)
        failed = failures(test, own)
        low, high = wilson_interval(int(failed.sum()), len(failed))
        rows.append({"name": test.name, "capability": test.capability, "kind": test.kind, "n": len(failed),
                     "failures": int(failed.sum()), "failure_rate": float(failed.mean()), "ci": [low, high],
                     "description": test.description, "example": _example(test, failed, own)})
    capabilities = {}
    for row in rows:
        capabilities.setdefault(row["capability"], []).append(row["failure_rate"])
    report = {"seed": seed, "cases_per_test": n, "neutral_rule": NEUTRAL_RULE, "tests": rows,
              "capabilities": {c: float(np.mean(r)) for c, r in capabilities.items()},
              "mean_failure_rate": float(np.mean([r["failure_rate"] for r in rows]))}
    log.info("behavioural suite: %d tests, %d sentences, mean failure rate %.3f", len(rows), len(texts),
             report["mean_failure_rate"])
    return report
