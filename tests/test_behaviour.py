"""The behavioural suite: a deterministic generator, the scoring of each test type on hand-made probabilities,
the report, evaluate.py behaviour, and the app's section."""

from __future__ import annotations

import json
import re
import shutil

import gradio as gr
import numpy as np
import pytest

import evaluate
from sentiment.artifacts import BEHAVIOUR, verify_manifest, write_manifest
from sentiment.behaviour import CAPABILITIES, NOT_NEGATIVE_BAND, VERDICT_NEGATIONS, BehaviourTest, build_suite
from sentiment.behaviour_report import behaviour_report, failures
from sentiment.errors import SentimentError
from sentiment.services import Services
from sentiment.ui import build_app


def test_the_suite_is_the_same_for_a_seed_and_covers_every_capability():
    suite = build_suite(seed=3, n=50)
    again = build_suite(seed=3, n=50)
    assert [(t.name, t.cases) for t in suite] == [(t.name, t.cases) for t in again]
    assert [t.cases for t in build_suite(seed=4, n=50)] != [t.cases for t in suite]
    assert {t.capability for t in suite} == set(CAPABILITIES)
    assert {t.kind for t in suite} == {"MFT", "INV", "DIR"}
    for test in suite:
        assert 10 <= len(test.cases) <= 50 and len(set(map(str, test.cases))) == len(test.cases), test.name
        if test.kind != "MFT":
            assert all(a != b for a, b in test.cases), test.name
    by_name = {t.name: t for t in suite}
    assert by_name["negated negative"].expected == "not negative"
    assert all(" not " in c or "n't" in c for c in by_name["negated negative"].cases)
    assert by_name["negated positive"].expected == "negative"
    negation = ("not ", "n't", "never", "nobody", "no one")
    for name, expected in (("negation as the verdict (negative)", "negative"),
                           ("negation as the verdict (positive)", "positive")):
        assert by_name[name].expected == expected and by_name[name].capability == "negation"
        assert all(any(word in c.lower() for word in negation) for c in by_name[name].cases), name
    assert not any(" a a" in c or " a e" in c or " a o" in c for t in suite if t.kind == "MFT" for c in t.cases)


def test_a_subset_of_capabilities_and_bad_requests():
    assert {t.capability for t in build_suite(n=10, capabilities=("negation",))} == {"negation"}
    with pytest.raises(SentimentError, match="unknown capability 'sarcasm'"):
        build_suite(capabilities=("sarcasm",))
    with pytest.raises(SentimentError, match="at least one case"):
        build_suite(n=0)


@pytest.mark.parametrize(("expected", "probs", "failed"), [
    ("positive", [0.9, 0.5, 0.49], [False, False, True]),
    ("negative", [0.1, 0.5, 0.49], [False, True, False]),
    ("not negative", [0.6, NOT_NEGATIVE_BAND, 0.39], [False, False, True]),
])
def test_mft_scoring(expected, probs, failed):
    test = BehaviourTest("t", "negation", "MFT", ["a", "b", "c"], expected=expected)
    assert failures(test, np.array(probs)).tolist() == failed


def test_inv_scoring_on_labels_and_on_a_tolerance():
    pairs = [("a", "b"), ("c", "d"), ("e", "f")]
    probs = np.array([0.6, 0.9, 0.6, 0.4, 0.2, 0.45])  # (before, after) per case
    assert failures(BehaviourTest("t", "robustness", "INV", pairs), probs).tolist() == [False, True, False]
    tolerant = BehaviourTest("t", "identity", "INV", pairs, tolerance=0.1)
    assert failures(tolerant, probs).tolist() == [True, True, True]
    assert failures(tolerant, np.array([0.5, 0.55, 0.5, 0.45, 0.2, 0.3])).tolist() == [False, False, False]


def test_dir_scoring_fails_only_moves_the_wrong_way_beyond_the_tolerance():
    pairs = [("a", "b"), ("c", "d"), ("e", "f"), ("g", "h")]
    test = BehaviourTest("t", "vocabulary", "DIR", pairs, direction={0: "up", 1: "up", 2: "down", 3: "down"},
                         tolerance=0.05)
    probs = np.array([0.7, 0.66, 0.7, 0.6, 0.3, 0.34, 0.3, 0.4])
    assert failures(test, probs).tolist() == [False, True, False, True]


def keyword_score(texts):
    """A scorer that knows its positive words and nothing of negation."""
    positive = ("great", "wonderful", "brilliant", "excellent", "superb", "fantastic", "beautiful", "charming")
    return np.array([0.9 if any(w in t.lower() for w in positive) else 0.1 for t in texts])


def test_the_report_names_rates_intervals_and_examples():
    report = behaviour_report(keyword_score, seed=0, n=40)
    rows = {t["name"]: t for t in report["tests"]}
    assert rows["negated positive"]["failure_rate"] == pytest.approx(
        np.mean([any(w in c.lower() for w in ("great", "wonderful", "brilliant", "excellent", "superb", "fantastic",
                                              "beautiful", "charming"))
                 for c in build_suite(0, 40)[2].cases]))
    assert rows["casing"]["failures"] == 0 and rows["casing"]["example"] is None
    failing = rows["negated positive"]
    assert failing["ci"][0] <= failing["failure_rate"] <= failing["ci"][1]
    assert failing["example"]["p_positive"] == 0.9
    assert " not " in failing["example"]["text"] or "n't" in failing["example"]["text"]
    assert set(report["capabilities"]) == set(CAPABILITIES)
    assert report["mean_failure_rate"] == pytest.approx(np.mean([t["failure_rate"] for t in report["tests"]]))
    assert "no neutral class" in report["neutral_rule"]


def test_evaluate_py_adds_the_report_and_the_app_shows_it(tiny_artifacts, tmp_path, capsys):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, artifacts)
    (artifacts / BEHAVIOUR).unlink()
    write_manifest(artifacts)
    assert "Behavioural tests" not in markdown(build_app(Services.load(artifacts, None, ig_steps=8)))
    assert evaluate.main(["behaviour", "--artifacts", str(artifacts), "--precision", "fp32"]) == 0
    assert "mean failure rate" in capsys.readouterr().out
    assert BEHAVIOUR in verify_manifest(artifacts)["files"]
    report = json.loads((artifacts / BEHAVIOUR).read_text())
    assert len(report["tests"]) == len(build_suite())
    assert (report["model"]["engine"], report["model"]["precision"]) == ("torch", "fp32")  # what scored it
    blocks = build_app(Services.load(artifacts, None, ig_steps=8))
    assert "### Behavioural tests" in markdown(blocks)
    assert "Served by `torch` in `fp32`" in markdown(blocks)
    assert any(isinstance(b, gr.Plot) and b.label == "Failure rate by test" for b in blocks.blocks.values())


def markdown(blocks: gr.Blocks) -> str:
    return "\n".join(b.value or "" for b in blocks.blocks.values() if isinstance(b, gr.Markdown))


def test_the_verdict_tests_weigh_their_templates_alike():
    """Each verdict template gives the same number of cases; when some had one slot, two frames made 168 of 200."""
    by_name = {t.name: t for t in build_suite(seed=42)}
    for name, _, _, templates in VERDICT_NEGATIONS:
        patterns = [re.compile("^" + re.sub(r"\\\{\w+\\\}", ".+?", re.escape(t)) + "$") for t in templates]
        counts = [sum(bool(p.match(case)) for case in by_name[name].cases) for p in patterns]
        assert counts == [40] * len(templates), (name, counts)
