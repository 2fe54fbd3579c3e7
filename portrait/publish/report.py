"""The daily portrait report: one self-contained HTML page with charts, for people who do not write SQL.

Spark reduces the date's portrait to a few small tables (:func:`score_histogram`, :func:`top_categories`,
:func:`tag_change_counts`; segment sizes come from ``segment_daily``); :func:`render_report` turns them into
HTML with matplotlib charts embedded as base64 PNG, so the page needs no other file and opens anywhere
(a browser, an MLflow artifact view, an e-mail). Every count shown obeys ``privacy.min_group_size`` like
``segment_daily``. Pure: :func:`portrait.stages.bi.write_report` reads, writes and logs.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from dataclasses import dataclass, field

from matplotlib.figure import Figure
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

SCORE_BINS = 20
TOP_CATEGORIES = 10
TOP_TAG_CHANGES = 15
REPORT_SEGMENT_KINDS: tuple[str, ...] = ("rfm_segment", "lifecycle_stage", "tag")


@dataclass
class ReportData:
    """The small tables a report shows; every list holds (label, number, …) tuples, largest first."""

    day: dt.date
    persons: int
    avg_propensity: float | None  # None: no model has scored the date
    model: str
    segments: dict[str, list[tuple[str, int, float | None]]]  # kind → (segment, users, avg_propensity)
    score_histogram: list[tuple[float, int]]  # (lower edge, persons)
    top_categories: list[tuple[str, int]]
    tag_changes: list[tuple[str, int, int]] | None = None  # (tag, gained, lost); None: no portrait_changes
    min_group_size: int = 1
    notes: list[str] = field(default_factory=list)


def score_histogram(portrait: DataFrame, bins: int = SCORE_BINS) -> list[tuple[float, int]]:
    """Persons per equal-width bin of purchase_propensity over [0, 1]: ``bins`` (edge, count) pairs."""
    bin_index = F.least(F.floor(F.col("purchase_propensity") * bins), F.lit(bins - 1)).cast("int")
    counts = {row["bin"]: row["persons"] for row in
              portrait.groupBy(bin_index.alias("bin")).agg(F.count(F.lit(1)).alias("persons")).collect()}
    return [(k / bins, int(counts.get(k, 0))) for k in range(bins)]


def top_categories(portrait: DataFrame, min_group_size: int, limit: int = TOP_CATEGORIES) -> list[tuple[str, int]]:
    """The ``limit`` most common top interests (``top_category``) with at least ``min_group_size`` persons."""
    rows = (portrait.where(F.col("top_category").isNotNull())
            .groupBy("top_category").agg(F.count(F.lit(1)).alias("persons"))
            .where(F.col("persons") >= min_group_size)
            .orderBy(F.col("persons").desc(), F.col("top_category")).limit(limit).collect())
    return [(row["top_category"], int(row["persons"])) for row in rows]


def tag_change_counts(changes: DataFrame, min_group_size: int,
                      limit: int = TOP_TAG_CHANGES) -> list[tuple[str, int, int]]:
    """Persons who gained and lost each tag (``portrait_changes`` rows of one date), most changed first.

    Tags whose gained and lost counts are both below ``min_group_size`` are left out; a count below it
    is shown as 0.
    """
    def per_tag(column: str) -> DataFrame:
        return (changes.select(F.explode(column).alias("tag")).groupBy("tag")
                .agg(F.count(F.lit(1)).alias(column)))

    counts = per_tag("gained").join(per_tag("lost"), on="tag", how="full").na.fill(0)
    shown = F.greatest("gained", "lost") >= min_group_size
    suppress = {c: F.when(F.col(c) >= min_group_size, F.col(c)).otherwise(0) for c in ("gained", "lost")}
    rows = (counts.where(shown).select("tag", suppress["gained"].alias("gained"), suppress["lost"].alias("lost"))
            .orderBy((F.col("gained") + F.col("lost")).desc(), F.col("tag")).limit(limit).collect())
    return [(row["tag"], int(row["gained"]), int(row["lost"])) for row in rows]


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _bar_chart(title: str, labels: list[str], values: list[float], xlabel: str,
               second: list[float] | None = None, legend: tuple[str, str] | None = None) -> str:
    # Figure() rather than pyplot: no global figure registry, nothing to close, safe off the main thread.
    figure = Figure(figsize=(7, 0.35 * max(len(labels), 3) + 1.2), dpi=90)
    ax = figure.subplots()
    positions = list(range(len(labels)))
    if second is None:
        ax.barh(positions, values, color="#4c72b0")
    else:
        ax.barh([p - 0.2 for p in positions], values, height=0.4, color="#55a868", label=legend[0])
        ax.barh([p + 0.2 for p in positions], second, height=0.4, color="#c44e52", label=legend[1])
        ax.legend(loc="lower right")
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return _png(figure)


def _histogram_chart(histogram: list[tuple[float, int]]) -> str:
    figure = Figure(figsize=(7, 3.2), dpi=90)
    ax = figure.subplots()
    width = histogram[1][0] - histogram[0][0] if len(histogram) > 1 else 1.0
    ax.bar([edge for edge, _ in histogram], [count for _, count in histogram], width=width, align="edge",
           color="#4c72b0", edgecolor="white")
    ax.set_title("Purchase propensity distribution")
    ax.set_xlabel("purchase_propensity")
    ax.set_ylabel("persons")
    ax.set_xlim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    return _png(figure)


def _table(headers: list[str], rows: list[tuple]) -> str:
    def cell(value) -> str:
        text = f"{value:,.4f}" if isinstance(value, float) else (f"{value:,}" if isinstance(value, int) else value)
        text = "–" if value is None else text  # unknown (no model scored the date), not zero
        return f"<td>{html.escape(str(text))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(encoded: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


_STYLE = """body{font-family:sans-serif;margin:2em;max-width:60em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:0.2em 0.6em;text-align:right}
td:first-child,th:first-child{text-align:left}.note{color:#666;font-size:0.9em}"""


def render_report(data: ReportData) -> str:
    """The report as one HTML page (charts inline as base64 PNG). Numbers appear in tables as well as
    charts, so the page is searchable and readable without images."""
    day = html.escape(data.day.isoformat())
    parts = [
        f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>portrait {day}</title>"
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>User portrait report {day}</h1>",
        _table(["measure", "value"], [("persons", data.persons), ("average purchase propensity", data.avg_propensity),
                                      ("model", data.model)]),
        f'<p class="note">Groups with fewer than {data.min_group_size:,} persons are not shown.</p>',
        "<h2>Segment sizes</h2>",
    ]
    for kind, rows in data.segments.items():
        if not rows:
            continue
        parts.append(f"<h3>{html.escape(kind)}</h3>")
        parts.append(_image(_bar_chart(f"Persons per {kind}", [r[0] for r in rows], [r[1] for r in rows], "persons"),
                            f"persons per {kind}"))
        parts.append(_table(["segment", "persons", "avg propensity"], rows))
    parts.append("<h2>Score distribution</h2>")
    parts.append(_image(_histogram_chart(data.score_histogram), "purchase propensity histogram"))
    bins = [(f"{edge:.2f}", count) for edge, count in data.score_histogram]
    parts.append(_table(["propensity from", "persons"], bins))
    parts.append("<h2>Top interests</h2>")
    if data.top_categories:
        parts.append(_image(_bar_chart("Persons per top category (last 30 days)",
                                       [c for c, _ in data.top_categories], [n for _, n in data.top_categories],
                                       "persons"), "top categories"))
        parts.append(_table(["top_category", "persons"], data.top_categories))
    else:
        parts.append('<p class="note">No category has enough persons to be shown.</p>')
    parts.append("<h2>Tag changes since the previous date</h2>")
    if data.tag_changes is None:
        parts.append('<p class="note">No portrait_changes table yet.</p>')
    elif not data.tag_changes:
        parts.append('<p class="note">No tag changed for enough persons to be shown.</p>')
    else:
        tags = [t for t, _, _ in data.tag_changes]
        parts.append(_image(_bar_chart("Persons gaining and losing each tag", tags,
                                       [g for _, g, _ in data.tag_changes], "persons",
                                       second=[lost for _, _, lost in data.tag_changes], legend=("gained", "lost")),
                            "tag changes"))
        parts.append(_table(["tag", "gained", "lost"], data.tag_changes))
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in data.notes]
    parts.append("</body></html>")
    return "\n".join(parts)
