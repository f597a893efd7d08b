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


def paired_predictions(new: str | Path, old: str | Path, name: str) -> tuple[pd.DataFrame, dict]:
    """Both folders' predictions of set `name`, row by row (labels, p_new, p_old), and the set's record. Refused
    unless both scored the same data: same file checksum, same rows, same keys and labels."""
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
    pa, pb = (s["predictions"].sort_values("row").reset_index(drop=True) for s in (a, b))
    if len(pa) != len(pb) or not (pa["key"].equals(pb["key"]) and pa["labels"].equals(pb["labels"])):
        raise SentimentError(f"the two {EVALUATIONS}/{name} sets hold different rows ({len(pa):,} against "
                             f"{len(pb):,}, or other reviews or labels): evaluate both on the same data with the same "
                             f"--max-samples and --seed")
    frame = pd.DataFrame({"labels": pa["labels"].to_numpy(np.int64), "p_new": pa["prob_positive"].to_numpy(float),
                          "p_old": pb["prob_positive"].to_numpy(float)})
    return frame, a["info"]


def _interval(values: np.ndarray) -> list[float]:
    return [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]


def compare(frame: pd.DataFrame, seed: int = 0, resamples: int = RESAMPLES) -> dict:
    """The paired comparison of `paired_predictions`' frame: accuracy of each and the exact McNemar test on the
    reviews where exactly one is right; ROC-AUC of each; the shift of P(positive), new minus old, per review
    (median and mean); labels flipped each way. Intervals: 95 %, paired bootstrap over reviews with `seed`."""
    labels, new, old = (frame[c].to_numpy() for c in ("labels", "p_new", "p_old"))
    if len(labels) < 2 or len(set(labels.tolist())) < 2:
        raise SentimentError("a comparison needs a set with reviews of both labels")
    right_new, right_old = (new >= 0.5) == labels, (old >= 0.5) == labels
    fixed, broken = int((right_new & ~right_old).sum()), int((~right_new & right_old).sum())
    shift = new - old
    rng = np.random.default_rng(seed)
    draws = {"accuracy": [], "roc_auc": [], "median_shift": [], "mean_shift": []}
    n = len(labels)
    while len(draws["accuracy"]) < resamples:
        i = rng.integers(0, n, n)
        if labels[i].min() == labels[i].max():  # a draw of one label has no ROC-AUC
            continue
        draws["accuracy"].append(right_new[i].mean() - right_old[i].mean())
        draws["roc_auc"].append(roc_auc_score(labels[i], new[i]) - roc_auc_score(labels[i], old[i]))
        draws["median_shift"].append(np.median(shift[i]))
        draws["mean_shift"].append(shift[i].mean())
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


def summary(name: str, r: dict) -> str:
    """What `compare` found, in a few lines."""
    acc, auc, shift, flips = r["accuracy"], r["roc_auc"], r["shift"], r["flipped"]

    def ci(values: list[float]) -> str:
        return f"[{values[0]:+.4f}, {values[1]:+.4f}]"

    return "\n".join([
        f"{name}: {r['n']:,} reviews, new against old",
        f"  accuracy {acc['new']:.4f} against {acc['old']:.4f} ({acc['difference']:+.4f}, 95 % CI "
        f"{ci(acc['difference_ci'])}); {acc['fixed']} fixed, {acc['broken']} broken (exact McNemar p "
        f"{acc['mcnemar_p']:.3g})",
        f"  ROC-AUC {auc['new']:.4f} against {auc['old']:.4f} ({auc['difference']:+.4f}, 95 % CI "
        f"{ci(auc['difference_ci'])})",
        f"  P(positive) shift per review: median {shift['median']:+.4f} {ci(shift['median_ci'])}, mean "
        f"{shift['mean']:+.4f} {ci(shift['mean_ci'])}",
        f"  labels flipped: {flips['to_positive']} to positive, {flips['to_negative']} to negative; called positive "
        f"{r['share_positive']['new']:.3f} against {r['share_positive']['old']:.3f}"])
