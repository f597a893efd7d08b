"""Plotly figures and tables for the fairness tab: a typed review's variants, the template suite, the probe."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from sentiment.dashboard import HEIGHT, TEMPLATE


def variants_table(original: float, rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """One row per counterfactual variant: category, swapped-to group, P(positive), its shift, the text."""
    table = pd.DataFrame(rows, columns=["category", "swapped to", "variant", "P(positive)"])
    table["shift"] = (table["P(positive)"] - original).round(4)
    table["label flips"] = (table["P(positive)"] >= 0.5) != (original >= 0.5)
    table["P(positive)"] = table["P(positive)"].round(4)
    return table[["category", "swapped to", "P(positive)", "shift", "label flips", "variant"]]


def variants_figure(table: pd.DataFrame) -> go.Figure:
    """Horizontal bars: how far each variant moves P(positive) from the original review."""
    labels = [f"{c}: {g}" for c, g in zip(table["category"], table["swapped to"], strict=True)]
    fig = go.Figure(go.Bar(x=table["shift"], y=labels, orientation="h",
                           marker_color=["#2ca02c" if s >= 0 else "#d62728" for s in table["shift"]],
                           hovertemplate="%{y}<br>shift of P(positive): %{x:+.4f}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, height=max(HEIGHT, 28 * len(labels) + 120),
                      title="Change of P(positive) when only the identity terms change",
                      xaxis_title="P(positive) of the variant minus the original's", yaxis={"autorange": "reversed"},
                      margin={"l": 220, "r": 20, "t": 60, "b": 50})
    return fig


def suite_figure(suite: dict) -> go.Figure:
    """Mean P(positive) per group over the template suite, with 95% bootstrap intervals, one panel row."""
    fig = go.Figure()
    for name, category in suite["categories"].items():
        groups = category["groups"]
        fig.add_trace(go.Scatter(
            x=[g["mean"] for g in groups.values()], y=[f"{name}: {g}" for g in groups], mode="markers",
            name=name, error_x={"type": "data", "symmetric": False,
                                "array": [g["ci"][1] - g["mean"] for g in groups.values()],
                                "arrayminus": [g["mean"] - g["ci"][0] for g in groups.values()]},
            hovertemplate="%{y}: mean P(positive) %{x:.3f}<extra></extra>"))
    rows = sum(len(c["groups"]) for c in suite["categories"].values())
    fig.update_layout(template=TEMPLATE, height=22 * rows + 140, showlegend=False,
                      title=f"Template suite: mean P(positive) per group ({suite['templates']} templates, 95% CI)",
                      xaxis_title="mean P(positive)", yaxis={"autorange": "reversed"},
                      margin={"l": 260, "r": 20, "t": 60, "b": 50})
    return fig


def gaps_table(suite: dict) -> pd.DataFrame:
    """The largest gap of each category, its interval, corrected p-value, flip rate and whether it is flagged."""
    rows = []
    for name, category in suite["categories"].items():
        gap = category["largest_gap"]
        rows.append({"category": name, "between": " vs ".join(gap["between"]), "gap": round(gap["gap"], 4),
                     "95% CI": f"[{gap['ci'][0]:+.4f}, {gap['ci'][1]:+.4f}]",
                     "p (Bonferroni)": round(gap["p_value"], 4),
                     "flip rate": round(category["flip_rate"], 3), "flagged": gap["flagged"]})
    return pd.DataFrame(rows)


def probe_table(probe: dict) -> pd.DataFrame:
    """Test-set probe per category: reviews and variants, flip rate and shifts with intervals."""
    rows = []
    for name, c in probe["categories"].items():
        if not c.get("variants"):
            rows.append({"category": name, "reviews mentioning": c.get("mentioning", 0), "reviews probed": 0,
                         "variants": 0})
            continue
        rows.append({"category": name, "reviews mentioning": c["mentioning"], "reviews probed": c["reviews"],
                     "variants": c["variants"], "flip rate": round(c["flip_rate"], 4),
                     "flip rate 95% CI": f"[{c['flip_rate_ci'][0]:.4f}, {c['flip_rate_ci'][1]:.4f}]",
                     "mean shift": round(c["mean_shift"], 4),
                     "mean |shift|": round(c["mean_abs_shift"], 4),
                     "mean |shift| 95% CI": f"[{c['mean_abs_shift_ci'][0]:.4f}, {c['mean_abs_shift_ci'][1]:.4f}]"})
    return pd.DataFrame(rows)
