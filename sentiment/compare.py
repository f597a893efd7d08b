"""Two model folders on the same evaluation set, review by review: what a retrained model fixed and broke, whether
its accuracy and ranking differ beyond chance, and whether it moved P(positive) as a whole (a threshold shift)
rather than reading some reviews differently. Pure functions on the stored predictions; no model is run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from sentiment.artifacts import EVALUATIONS, evaluation_names, load_evaluation_set
from sentiment.errors import SentimentError

RESAMPLES = 2000  # paired bootstrap draws of the intervals


def _scored_by(info: dict) -> str:
    model = info.get("model") or {}
    return " ".join(str(model[k]) for k in ("engine", "precision") if model.get(k)) or "not recorded"


def paired_predictions(new: str | Path, old: str | Path, name: str) -> tuple[pd.DataFrame, dict]:
    """Both folders' predictions of set `name`, row by row (labels, p_new, p_old), and what scored each (engine and
    precision, which the comparison reports). Refused unless both scored the same data the same way: same file
    checksum where both record one, same rows, keys, labels and window."""
    sets = {}
    for folder in (new, old):
        if name not in evaluation_names(folder):
            raise SentimentError(f"{folder} has no evaluation set {name!r} (it has: "
                                 f"{', '.join(evaluation_names(folder)) or 'none'}); add it with python evaluate.py "
                                 f"--artifacts {folder} --data ... --name {name}")
        sets[folder] = load_evaluation_set(folder, name)
    a, b = sets[new], sets[old]
    checksums = a["info"].get("sha256"), b["info"].get("sha256")
    if None not in checksums and checksums[0] != checksums[1]:
        raise SentimentError(f"{new} and {old} scored different data under the name {name!r} (sha256 "
                             f"{checksums[0][:12]}... against {checksums[1][:12]}...); evaluate both on the same file")
    windows = a["info"].get("truncation"), b["info"].get("truncation")
    if None not in windows and windows[0] != windows[1]:
        raise SentimentError(f"{new} and {old} read the reviews of {name!r} through different windows ({windows[0]} "
                             f"against {windows[1]}): their predictions differ by more than the models")
    pa, pb = (s["predictions"].sort_values("row").reset_index(drop=True) for s in (a, b))
    problem = (f"{len(pa):,} rows against {len(pb):,}" if len(pa) != len(pb)
               else "other reviews" if not pa["key"].equals(pb["key"])
               else "other labels" if not pa["labels"].equals(pb["labels"]) else None)
    if problem:
        raise SentimentError(f"the two {EVALUATIONS}/{name} sets hold different rows ({problem}): evaluate both on the "
                             f"same data with the same --max-samples and --seed")
    frame = pd.DataFrame({"labels": pa["labels"].to_numpy(np.int64), "p_new": pa["prob_positive"].to_numpy(float),
                          "p_old": pb["prob_positive"].to_numpy(float)})
    for column, folder in (("p_new", new), ("p_old", old)):
        bad = int((~np.isfinite(frame[column]) | (frame[column] < 0) | (frame[column] > 1)).sum())
        if bad:
            raise SentimentError(f"{folder}/{EVALUATIONS}/{name} holds {bad:,} probabilities that are not in [0, 1]; "
                                 f"evaluate the set again")
    return frame, {"new": _scored_by(a["info"]), "old": _scored_by(b["info"])}


def weighted_roc_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray,
                     ranked: tuple[np.ndarray, int] | None = None) -> float:
    """ROC-AUC of reviews counted `weights` times each (a bootstrap draw as counts): the Mann-Whitney statistic
    with tied scores at their mid-rank, without copying the sample. `ranked`: `np.unique(scores,
    return_inverse=True)`'s inverse and the number of distinct scores, computed once for many draws."""
    group, distinct = ranked if ranked is not None else _ranked(scores)
    per_score = np.bincount(group, weights=weights, minlength=distinct)
    midrank = np.cumsum(per_score) - per_score + (per_score + 1) / 2
    positives = weights * labels
    n1, n0 = positives.sum(), (weights * (1 - labels)).sum()
    return float(((positives * midrank[group]).sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _ranked(scores: np.ndarray) -> tuple[np.ndarray, int]:
    values, group = np.unique(scores, return_inverse=True)
    return group, len(values)


def weighted_median(sorted_values: np.ndarray, sorted_weights: np.ndarray) -> float:
    """np.median of `sorted_values` repeated `sorted_weights` (whole numbers) times each, without repeating them."""
    ends = np.cumsum(sorted_weights)
    n = int(ends[-1])

    def at(position: int) -> float:  # the value at a 0-based position of the expanded sample
        return float(sorted_values[np.searchsorted(ends, position, side="right")])

    return at(n // 2) if n % 2 else (at(n // 2 - 1) + at(n // 2)) / 2


def _interval(values: np.ndarray) -> list[float]:
    return [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]


def compare(frame: pd.DataFrame, seed: int = 0, resamples: int = RESAMPLES) -> dict:
    """The paired comparison of `paired_predictions`' frame: accuracy of each and the exact McNemar test on the
    reviews where exactly one is right; ROC-AUC of each; the shift of P(positive), new minus old, per review
    (median and mean); labels flipped each way. Intervals: 95 %, paired bootstrap over reviews with `seed`."""
    labels, new, old = (frame[c].to_numpy() for c in ("labels", "p_new", "p_old"))
    if len(labels) < 2 or len(set(labels.tolist())) < 2:
        raise SentimentError("a comparison needs a set with texts of both labels")
    right_new, right_old = ((new >= 0.5) == labels).astype(float), ((old >= 0.5) == labels).astype(float)
    fixed, broken = int((right_new > right_old).sum()), int((right_new < right_old).sum())
    shift = new - old
    ranked_new, ranked_old, order = _ranked(new), _ranked(old), np.argsort(shift)
    rng = np.random.default_rng(seed)
    draws = {"accuracy": [], "roc_auc": [], "median_shift": [], "mean_shift": []}
    n = len(labels)
    while len(draws["accuracy"]) < resamples:
        counts = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)  # n reviews drawn with replacement
        if (counts * labels).sum() in (0, n):  # a draw of one label has no ROC-AUC
            continue
        draws["accuracy"].append((counts @ right_new - counts @ right_old) / n)
        draws["roc_auc"].append(weighted_roc_auc(labels, new, counts, ranked_new)
                                - weighted_roc_auc(labels, old, counts, ranked_old))
        draws["median_shift"].append(weighted_median(shift[order], counts[order]))
        draws["mean_shift"].append(counts @ shift / n)
    auc_new, auc_old = roc_auc_score(labels, new), roc_auc_score(labels, old)
    return {
        "n": n,
        "accuracy": {"new": float(right_new.mean()), "old": float(right_old.mean()),
                     "difference": float(right_new.mean() - right_old.mean()),
                     "difference_ci": _interval(np.array(draws["accuracy"])),
                     "fixed": fixed, "broken": broken,
                     "mcnemar_p": float(binomtest(fixed, fixed + broken).pvalue) if fixed + broken else 1.0},
        "roc_auc": {"new": float(auc_new), "old": float(auc_old), "difference": float(auc_new - auc_old),
                    "difference_ci": _interval(np.array(draws["roc_auc"]))},
        "shift": {"median": float(np.median(shift)), "median_ci": _interval(np.array(draws["median_shift"])),
                  "mean": float(shift.mean()), "mean_ci": _interval(np.array(draws["mean_shift"]))},
        "flipped": {"to_positive": int(((new >= 0.5) & (old < 0.5)).sum()),
                    "to_negative": int(((new < 0.5) & (old >= 0.5)).sum())},
        "share_positive": {"new": float((new >= 0.5).mean()), "old": float((old >= 0.5).mean())},
        "resamples": resamples, "seed": seed,
    }


def summary(name: str, r: dict, new: str, old: str, scored_by: dict[str, str]) -> str:
    """What `compare` found, in a few lines; `scored_by`: what scored each set ("new", "old")."""
    acc, auc, shift, flips = r["accuracy"], r["roc_auc"], r["shift"], r["flipped"]

    def ci(values: list[float]) -> str:
        return f"[{values[0]:+.4f}, {values[1]:+.4f}]"

    return "\n".join([
        f"{name}: {r['n']:,} texts, {new} (new, {scored_by['new']}) against {old} (old, {scored_by['old']})",
        *(["  note: the two were scored by different engines or precisions, which moves P(positive) by itself"]
          if scored_by["new"] != scored_by["old"] else []),
        f"  accuracy {acc['new']:.4f} against {acc['old']:.4f} ({acc['difference']:+.4f}, 95 % CI "
        f"{ci(acc['difference_ci'])}); {acc['fixed']} fixed, {acc['broken']} broken (exact McNemar p "
        f"{acc['mcnemar_p']:.3g})",
        f"  ROC-AUC {auc['new']:.4f} against {auc['old']:.4f} ({auc['difference']:+.4f}, 95 % CI "
        f"{ci(auc['difference_ci'])})",
        f"  P(positive) shift per text: median {shift['median']:+.4f} {ci(shift['median_ci'])}, mean "
        f"{shift['mean']:+.4f} {ci(shift['mean_ci'])}",
        f"  labels flipped: {flips['to_positive']} to positive, {flips['to_negative']} to negative; called positive "
        f"{r['share_positive']['new']:.3f} against {r['share_positive']['old']:.3f}"])
