"""Identity-term perturbations and their statistics: does the prediction move when only identity changes?"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np
from scipy import stats

from sentiment.augment import find_terms, perturb
from sentiment.lexicon import CATEGORIES, Category

GAP_THRESHOLD = 0.05  # 5 points of P(positive) for the same sentence: large enough for a reader to notice
ALPHA = 0.05

# Written for this project: identity is incidental to the sentiment of each sentence.
TEMPLATES: tuple[tuple[str, str], ...] = (
    ("neutral", "{X} plays the lead in this film."), ("neutral", "The film was directed by {X}."),
    ("neutral", "The story is told through the eyes of {X}."), ("neutral", "{X} appears in the second half."),
    ("neutral", "I watched this movie with {X} last night."), ("neutral", "The main character is {X}."),
    ("positive", "{X} gives a wonderful performance in this movie."),
    ("positive", "I loved this film, and {X} in the lead was brilliant."),
    ("positive", "A moving story about {X}, beautifully shot."),
    ("positive", "{X} wrote a funny, clever script that I enjoyed."),
    ("negative", "{X} gives a dreadful performance in this movie."),
    ("negative", "I hated this film, and {X} in the lead was terrible."),
    ("negative", "A boring story about {X}, badly shot."),
    ("negative", "{X} wrote a dull, clumsy script that I disliked."),
)


def bootstrap_ci(values: Sequence[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95,
                 weights: Sequence[float] | None = None) -> list[float]:
    """Percentile bootstrap interval of the mean; with `weights`, of the weighted mean. Per-review means weighted by
    each review's number of variants make it a cluster bootstrap of the per-variant mean: reviews are resampled,
    and the interval is that of the rate reported beside it."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return [float("nan"), float("nan")]
    w = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = (values[drawn] * w[drawn]).sum(axis=1) / w[drawn].sum(axis=1)
    tail = (1 - level) / 2 * 100
    return [float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))]


def paired_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank test of paired scores; 1.0 when they never differ."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if np.allclose(diff, 0):
        return 1.0
    return float(stats.wilcoxon(diff, zero_method="zsplit").pvalue)


ScoreFn = Callable[[list[str]], np.ndarray]  # texts -> P(positive)


def _sentence(template: str, phrase: str) -> str:
    text = template.format(X=phrase)
    return text[0].upper() + text[1:]


def _phrases(category: Category) -> list[list[str]]:
    """Phrases per group: every name of a names category (so one name does not speak for a group), else one."""
    if "names" in category.name:
        return [[slot[g] for slot in category.slots if slot[g]] for g in range(len(category.groups))]
    return [[p] for p in category.phrases]


def template_suite(score: ScoreFn, threshold: float = GAP_THRESHOLD, alpha: float = ALPHA) -> dict:
    """Per category: mean P(positive) per group with intervals, the largest gap, its test, the flip rate."""
    report = {"threshold": threshold, "alpha": alpha, "templates": len(TEMPLATES), "categories": {}}
    for category in CATEGORIES:
        phrases = _phrases(category)
        sentences = [_sentence(t, p) for _, t in TEMPLATES for group in phrases for p in group]
        flat = iter(score(sentences).tolist())
        # scores[g][t]: mean P(positive) of group g's phrases in template t; labels per (t, g, phrase)
        per_template = [[[next(flat) for _ in group] for group in phrases] for _ in TEMPLATES]
        scores = np.array([[np.mean(per_template[t][g]) for t in range(len(TEMPLATES))] for g in range(len(phrases))])
        flips = [len({p >= 0.5 for group in row for p in group}) > 1 for row in per_template]
        report["categories"][category.name] = _gap_report(category, scores, flips, threshold, alpha)
    return report


def _gap_report(category: Category, scores: np.ndarray, flips: list[bool], threshold: float, alpha: float) -> dict:
    groups = {g: {"mean": float(scores[i].mean()), "ci": bootstrap_ci(scores[i], seed=i)}
              for i, g in enumerate(category.groups)}
    pairs = list(combinations(range(len(category.groups)), 2))
    a, b = max(pairs, key=lambda p: abs(scores[p[0]].mean() - scores[p[1]].mean()))
    gap = float(scores[a].mean() - scores[b].mean())
    # Bonferroni over all pairs: the largest gap was picked after looking at all of them.
    p_value = min(1.0, paired_p_value(scores[a], scores[b]) * len(pairs))
    return {"groups": groups, "largest_gap": {
        "between": [category.groups[a], category.groups[b]], "gap": gap, "ci": bootstrap_ci(scores[a] - scores[b]),
        "p_value": p_value, "flagged": bool(p_value < alpha and abs(gap) >= threshold)},
        "flip_rate": float(np.mean(flips))}


def probe_reviews(score: ScoreFn, texts: Sequence[str], keys: Sequence[str], max_reviews: int = 300,
                  max_targets: int = 3, seed: int = 0) -> dict:
    """Test reviews that mention identity terms, swapped within their category: flip rate and shift of
    P(positive), with bootstrap intervals over reviews. Reports keys, never texts."""
    rng = np.random.default_rng(seed)
    mentions = [find_terms(t) for t in texts]
    report = {"max_reviews": max_reviews, "max_targets": max_targets, "categories": {}}
    for category in CATEGORIES:
        candidates = [i for i, m in enumerate(mentions) if category.name in m]
        chosen = sorted(rng.choice(candidates, size=min(max_reviews, len(candidates)), replace=False).tolist())
        jobs = []  # (review index, target group, perturbed text)
        for i in chosen:
            options = [(g, v) for g, v in ((g, perturb(texts[i], category, g)) for g in range(len(category.groups)))
                       if v != texts[i]]
            picked = rng.permutation(len(options))[:max_targets]
            jobs.extend((i, options[k][0], options[k][1]) for k in sorted(picked.tolist()))
        if not jobs:
            report["categories"][category.name] = {"mentioning": len(candidates), "reviews": 0, "variants": 0}
            continue
        report["categories"][category.name] = _probe_category(score, texts, keys, category, chosen, jobs,
                                                              len(candidates))
    return report


def _probe_category(score: ScoreFn, texts: Sequence[str], keys: Sequence[str], category: Category,
                    chosen: list[int], jobs: list[tuple[int, int, str]], mentioning: int) -> dict:
    original = dict(zip(chosen, score([texts[i] for i in chosen]).tolist(), strict=True))
    perturbed = score([text for _, _, text in jobs])
    shifts = np.array([p - original[i] for (i, _, _), p in zip(jobs, perturbed, strict=True)])
    flips = np.array([(p >= 0.5) != (original[i] >= 0.5) for (i, _, _), p in zip(jobs, perturbed, strict=True)])
    by_review: dict[int, list[int]] = {}
    for row, (i, _, _) in enumerate(jobs):
        by_review.setdefault(i, []).append(row)
    review_flip = [flips[rows].mean() for rows in by_review.values()]
    review_shift = [shifts[rows].mean() for rows in by_review.values()]
    review_abs_shift = [np.abs(shifts[rows]).mean() for rows in by_review.values()]
    variants = [len(rows) for rows in by_review.values()]  # 1 to 3 per review: the intervals weight by them
    to_group = {category.groups[g]: float(shifts[[r for r, job in enumerate(jobs) if job[1] == g]].mean())
                for g in sorted({g for _, g, _ in jobs})}
    largest = np.argsort(-np.abs(shifts))[:10]
    return {"mentioning": mentioning, "reviews": len(by_review), "variants": len(jobs),
            "flip_rate": float(flips.mean()), "flip_rate_ci": bootstrap_ci(review_flip, weights=variants),
            "mean_shift": float(shifts.mean()), "mean_shift_ci": bootstrap_ci(review_shift, weights=variants),
            "mean_abs_shift": float(np.abs(shifts).mean()),
            "mean_abs_shift_ci": bootstrap_ci(review_abs_shift, weights=variants),
            "mean_shift_to_group": to_group,
            "largest_shifts": [{"key": keys[jobs[r][0]], "to": category.groups[jobs[r][1]],
                                "shift": float(shifts[r])} for r in largest]}


def fairness_report(score: ScoreFn, texts: Sequence[str], keys: Sequence[str], max_reviews: int = 300,
                    seed: int = 0) -> dict:
    """The template suite and the test-set probe, as saved in the artifacts (fairness.json)."""
    return {"suite": template_suite(score), "probe": probe_reviews(score, texts, keys, max_reviews, seed=seed)}
