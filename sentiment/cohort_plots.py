"""Plotly figures of the error explorer: error rate by cohort with Wilson intervals, and a two-feature heat map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from sentiment.cohorts import cohort_features, stored_misleading_words
from sentiment.dashboard import HEIGHT, TEMPLATE

OVERALL_COLOR, BAR_COLOR, SMALL_COLOR = "grey", "#d62728", "#f4a6a6"


def _empty(title: str, why: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=why, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_layout(template=TEMPLATE, title=title, height=HEIGHT)
    return fig


def _order(feature: str, cohorts: pd.DataFrame) -> pd.DataFrame:
    """Ratings and bands in their natural order; markers and labels as they come; movies by errors."""
    if feature == "movie":
        return cohorts.sort_values(["errors", "n"], ascending=False)
    key = cohorts["cohort"].str.extract(r"^([\d.]+)")[0].astype(float)
    return cohorts.assign(_key=key).sort_values(["_key", "cohort"]).drop(columns="_key")


def cohort_figure(cohorts: pd.DataFrame, feature: str, overall: float) -> go.Figure:
    """Error rate of each cohort of one feature, with its 95 % Wilson interval as error bars and the overall
    rate as a line; cohorts under 30 reviews are drawn pale."""
    title = f"Error rate by {feature}"
    rows = cohorts[cohorts["feature"] == feature]
    if rows.empty:
        return _empty(title, f"no {feature} in this evaluation set")
    rows = _order(feature, rows)
    fig = go.Figure(go.Bar(
        x=rows["cohort"], y=rows["error rate"],
        error_y={"type": "data", "symmetric": False, "array": rows["ci high"] - rows["error rate"],
                 "arrayminus": rows["error rate"] - rows["ci low"]},
        marker_color=[SMALL_COLOR if small else BAR_COLOR for small in rows["small"]],
        customdata=np.column_stack([rows["n"], rows["errors"], rows["ci low"], rows["ci high"], rows["lift"]]),
        hovertemplate="%{x}: %{customdata[1]:,} errors of %{customdata[0]:,}<br>error rate %{y:.3f} "
                      "(95% CI %{customdata[2]:.3f}-%{customdata[3]:.3f})<br>lift %{customdata[4]:.2f}<extra></extra>",
        name="error rate (95% Wilson CI; pale: n < 30)"))
    fig.add_hline(y=overall, line_dash="dash", line_color=OVERALL_COLOR,
                  annotation_text=f"overall {overall:.3f}", annotation_position="top left")
    fig.update_xaxes(title=feature, type="category")
    fig.update_yaxes(title="error rate", rangemode="tozero")
    fig.update_layout(template=TEMPLATE, title=title, height=HEIGHT, showlegend=True,
                      margin={"l": 60, "r": 20, "t": 60, "b": 50},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0})
    return fig


def heatmap_figure(predictions: pd.DataFrame, rows: str, columns: str) -> go.Figure:
    """Error rate in every cell of two features (for example rating x length), with the cell's n on hover."""
    title = f"Error rate by {rows} and {columns}"
    features = cohort_features(predictions)
    if rows not in features or columns not in features:
        return _empty(title, f"this evaluation set has no {rows if rows not in features else columns}")
    frame = pd.DataFrame({"r": features[rows], "c": features[columns],
                          "wrong": (predictions["predicted"] != predictions["labels"]).astype(float)})
    stats = frame.groupby(["r", "c"])["wrong"].agg(["mean", "size"]).reset_index()
    order_r = _order(rows, pd.DataFrame({"cohort": stats["r"].unique(), "errors": 0, "n": 0}))["cohort"].tolist()
    order_c = _order(columns, pd.DataFrame({"cohort": stats["c"].unique(), "errors": 0, "n": 0}))["cohort"].tolist()
    rate = stats.pivot(index="r", columns="c", values="mean").reindex(index=order_r, columns=order_c)
    count = stats.pivot(index="r", columns="c", values="size").reindex(index=order_r, columns=order_c).fillna(0)
    text = [[f"{rate.iat[i, j]:.2f}<br>n={int(count.iat[i, j])}" if count.iat[i, j] else ""
             for j in range(rate.shape[1])] for i in range(rate.shape[0])]
    fig = go.Figure(go.Heatmap(z=rate.to_numpy(), x=order_c, y=order_r, text=text, texttemplate="%{text}",
                               colorscale="Reds", zmin=0, customdata=count.to_numpy(),
                               hovertemplate=f"{rows} %{{y}}, {columns} %{{x}}<br>error rate %{{z:.3f}} of "
                                             "%{customdata:,} reviews<extra></extra>",
                               colorbar={"title": "error rate"}))
    fig.update_xaxes(title=columns, type="category")
    fig.update_yaxes(title=rows, type="category")
    fig.update_layout(template=TEMPLATE, title=title, height=HEIGHT, margin={"l": 80, "r": 20, "t": 60, "b": 50})
    return fig


def misleading_words_figure(report: dict | None, top: int = 20) -> go.Figure:
    """The words that pushed most toward the wrong class over the explained mistakes (misleading_words.json)."""
    title = "Words that mislead"
    if report is None or not report["words"]:
        return _empty(title, "no explained mistakes stored for this set (evaluate.py --explain-mistakes N)")
    words = stored_misleading_words(report).head(top).iloc[::-1]  # largest at the top of the chart
    fig = go.Figure(go.Bar(
        x=words["total attribution"], y=words["word"], orientation="h", marker_color=BAR_COLOR,
        customdata=np.column_stack([words["mistakes"], words["misled"], words["mean attribution"]]),
        hovertemplate="%{y}: in %{customdata[0]} mistakes, toward the wrong class in %{customdata[1]}<br>mean "
                      "attribution %{customdata[2]:.3f}, total %{x:.3f}<extra></extra>"))
    fig.update_xaxes(title="attribution toward the wrong class, summed over mistakes (logit units)")
    fig.update_yaxes(type="category")
    fig.update_layout(template=TEMPLATE, title=f"{title} ({report['mistakes_explained']} most confident of "
                                               f"{report['mistakes']:,} mistakes explained)",
                      height=max(HEIGHT, 22 * len(words) + 120), margin={"l": 110, "r": 20, "t": 60, "b": 50})
    return fig
