"""The app in a real Chromium (Playwright, sync API): analyze a review, read the label and the highlighted words,
open the evaluation dashboard and switch its evaluation set, and check that review text is shown as text, never run
as HTML."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
IG_STEPS = 8  # the steps slider's value in the `live_app` fixture
TIMEOUT_MS = 60_000  # two busy CPU cores: the first request also warms the model
REVIEW = "This movie was wonderful, brilliant and moving. I loved it."
INJECTION = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> a dull, boring film'
# The colours Gradio's HighlightedText gives scores below and above zero (rgba(r, g, b, |score|)).
SCORE_COLOURS = {"purple": "128, 90, 213", "red": "239, 68, 60"}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not at {CHROMIUM}; install it with `apt-get install chromium`")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt")
    sync_api.expect.set_options(timeout=TIMEOUT_MS)  # assertions wait as long as actions (their own default: 5 s)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_app):
    url, _ = live_app
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    # Only the app itself: fonts or scripts from elsewhere would make the test depend on the network.
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
    page.goto(url)
    yield page
    context.close()


@contextlib.contextmanager
def screenshot_on_failure(page, name: str):
    """Leave a full-page screenshot in /tmp when anything inside fails, to see what the browser showed."""
    try:
        yield
    except Exception:
        path = Path("/tmp") / f"sentiment-{name}-{time.strftime('%Y%m%d-%H%M%S')}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot of the failure: {path}")
        raise


def analyze(page, text: str) -> list[tuple[str, str]]:
    """Type a review, press Analyze, wait for the highlighting; the (text, style) of each highlighted segment."""
    page.get_by_label("Movie review").fill(text)
    page.get_by_role("button", name="Analyze").click()
    tokens = page.get_by_test_id("highlighted-text:textfield").locator(".token")
    tokens.first.wait_for()
    page.wait_for_function("([text]) => [...document.querySelectorAll('[data-testid=\"highlighted-text:textfield\"] "
                           ".token .text')].map(e => e.textContent).join('') === text", arg=[text])
    return tokens.evaluate_all("els => els.map(e => [e.querySelector('.text').textContent, "
                               "e.getAttribute('style') || ''])")


def test_analyze_shows_the_label_and_highlights_the_review(page):
    with screenshot_on_failure(page, "predict"):
        segments = analyze(page, REVIEW)
        label = page.get_by_test_id("label-output-value")
        assert label.inner_text().strip() in ("negative", "positive")
        assert "".join(text for text, _ in segments) == REVIEW
        highlighted = {text for text, style in segments if "background-color" in style}
        assert {"wonderful", "brilliant", "loved"} <= highlighted
        page.screenshot(path="/tmp/sentiment-predict-tab.png", full_page=True)


def test_the_highlight_legend_names_the_colours_it_shows(page, live_app):
    """The component's label says which colour means which sentiment; the rendered colours must agree."""
    from gradio_client import Client

    with screenshot_on_failure(page, "legend"):
        segments = analyze(page, REVIEW)
        title = page.get_by_test_id("highlighted-text").get_by_test_id("block-label").inner_text()
        client = Client(live_app[0], verbose=False, download_files=False, analytics_enabled=False)
        try:
            expected, _, _ = client.predict(REVIEW, IG_STEPS, api_name="/explain")
        finally:
            client.close()
        assert [item["token"] for item in expected] == [text for text, _ in segments]
        for direction, sign in (("positive", 1), ("negative", -1)):
            named = re.search(rf"(\w+): (?:toward )?{direction}", title)
            assert named and named.group(1) in SCORE_COLOURS, f"the legend {title!r} names no shown colour"
            strong = [style for item, (_, style) in zip(expected, segments, strict=True)
                      if item["class_or_confidence"] is not None and sign * item["class_or_confidence"] > 0.2]
            assert strong, f"no word pushes clearly toward {direction}"
            assert all(SCORE_COLOURS[named.group(1)] in style for style in strong), (title, direction, strong)


def test_evaluation_tab_draws_the_dashboard(page):
    with screenshot_on_failure(page, "evaluation"):
        page.get_by_role("tab", name="Evaluation").click()
        page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')]"
                               ".filter(e => e.offsetParent !== null).length >= 4")
        plots = page.locator(".js-plotly-plot:visible")
        assert plots.count() >= 4
        assert plots.first.locator(".main-svg").count() >= 1  # Plotly rendered, not just a placeholder


def test_evaluation_tab_switches_between_evaluation_sets(page):
    """`live_app` serves two sets: train.py's "test" (16 reviews) and evaluate.py's "ours" (12, from ours.csv)."""
    expect = pytest.importorskip("playwright.sync_api").expect
    with screenshot_on_failure(page, "evaluation-sets"):
        page.get_by_role("tab", name="Evaluation").click()
        heading = page.get_by_role("heading", name=re.compile(r"^Results on"))
        expect(heading).to_have_text("Results on test")
        expect(page.get_by_role("row", name="reviews 16", exact=True)).to_be_visible()
        expect(page.get_by_text(re.compile(r"two_sets\d*/ours\.csv$")).first).to_be_visible()  # the comparison
        selector = page.get_by_label("Evaluation set").locator("visible=true")
        expect(selector).to_have_value(re.compile(r"^test \("))
        selector.click()
        page.get_by_role("option", name=re.compile(r"^ours \(.*ours\.csv\)$")).click()
        expect(heading).to_have_text("Results on ours")
        expect(page.get_by_role("row", name="reviews 12", exact=True)).to_be_visible()


def test_review_html_is_shown_as_text_and_never_run(page):
    with screenshot_on_failure(page, "injection"):
        segments = analyze(page, INJECTION)
        assert page.evaluate("() => typeof window.__pwned") == "undefined"
        assert "".join(text for text, _ in segments) == INJECTION
        field = page.get_by_test_id("highlighted-text:textfield")
        assert field.locator("img, script").count() == 0
        assert "<img" in field.evaluate("e => e.textContent.replace(/\\s+/g, '')")
        assert page.locator('img[src="x"]').count() == 0


def test_error_explorer_charts_cohorts_and_filters_the_mistakes(page, two_set_artifacts):
    """The cohort charts carry error bars, picking a cohort lists exactly its mistakes, and another evaluation set
    redraws it all; the expected counts come from the stored predictions and cohorts."""
    import json

    import pandas as pd

    expect = pytest.importorskip("playwright.sync_api").expect
    evaluations = two_set_artifacts / "evaluations"

    def mistakes(name: str) -> int:
        predictions = pd.read_parquet(evaluations / name / "predictions.parquet")
        return int((predictions["predicted"] != predictions["labels"]).sum())

    # A cohort holding some of the test set's mistakes but not all, so that picking it visibly filters the table.
    cohorts = json.loads((evaluations / "test" / "cohorts.json").read_text())
    total = mistakes("test")
    picked = next(c for c in cohorts if 0 < c["errors"] < total)
    # The first cell of each listed mistake: its key (16 hex digits).
    keys = page.locator('#misclassified [role="gridcell"][data-col="0"]').filter(has_text=re.compile(r"[0-9a-f]{16}"))
    with screenshot_on_failure(page, "error-explorer"):
        page.get_by_role("tab", name="Error explorer").click()
        page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')]"
                               ".filter(e => e.offsetParent !== null).length >= 4")
        assert page.locator(".js-plotly-plot:visible .errorbar").count() >= 2  # intervals drawn on the bars
        expect(keys).to_have_count(total)
        page.locator("#cohort input").click()
        page.get_by_role("option", name=f"{picked['feature']}: {picked['cohort']}", exact=True).click()
        expect(keys).to_have_count(picked["errors"])
        page.locator("#error-set input").click()
        page.get_by_role("option", name="ours", exact=True).click()
        expect(page.locator("#cohort input")).to_have_value("all reviews")  # a new set resets the cohort
        expect(keys).to_have_count(mistakes("ours"))
