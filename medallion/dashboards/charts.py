"""Charts as PNG images in Markdown: each file's quality score over time against the threshold, and net revenue by
month. Drawn by matplotlib's Agg renderer on a Figure of its own (no pyplot, so no global state), with the fonts
matplotlib ships."""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from medallion.dashboards.images import markdown_image
from medallion.warehouse.history import QualityPoint, RevenueMonth

_SIZE_INCHES = (9.0, 3.6)
_DPI = 100
_PASSED, _FAILED, _DATASET, _THRESHOLD, _BAR, _LOSS = "#2e7d32", "#c62828", "#1565c0", "#ef6c00", "#c9a227", "#8d6e63"
_BAR_DAYS = 24
# The narrowest span of the x axis: two days of quality measurements, three months of revenue.
_LEAST_QUALITY_DAYS = 2.0
_LEAST_REVENUE_DAYS = 92.0
# The latest files below the threshold are named on the chart; more would cover it.
_NAMED_FAILURES = 5


def quality_chart_markdown(points: Sequence[QualityPoint], *, threshold: float | None = None) -> str:
    """Markdown with a one-line summary and the chart; `threshold` wins over the one the measurements recorded."""
    line = _threshold_of(points, threshold)
    files = [point for point in points if point.scope == "file"]
    below = [point for point in files if line is not None and point.score < line]
    datasets = [point for point in points if point.scope == "dataset"]
    if not points:
        summary = "No quality measurement yet."
    else:
        latest = f"Dataset score {datasets[-1].score:.1f}" if datasets else "No dataset score yet"
        against = f" against a threshold of {line:g}" if line is not None else ""
        summary = f"{latest}{against}; {_count(len(files), 'file')} scored, {len(below):,} below the threshold."
    image = markdown_image(
        "Quality score of each file and of the dataset over time",
        quality_chart_png(points, threshold=threshold),
        "image/png",
    )
    return f"# Quality over time\n\n{summary}\n\n{image}\n"


def revenue_chart_markdown(months: Sequence[RevenueMonth], *, currency: str | None = None) -> str:
    """Markdown with a one-line summary and the chart of net revenue by month."""
    if months:
        total = sum(month.net_revenue for month in months)
        summary = (
            f"{_count(len(months), 'month')} from {months[0].month_start:%B %Y} to "
            f"{months[-1].month_start:%B %Y}; net revenue {_money(total, currency)} in all."
        )
    else:
        summary = "No sales in gold yet."
    image = markdown_image("Net revenue by month", revenue_chart_png(months, currency=currency), "image/png")
    return f"# Net revenue by month\n\n{summary}\n\n{image}\n"


def quality_chart_png(points: Sequence[QualityPoint], *, threshold: float | None = None) -> bytes:
    """Each file's score as a dot (red below the threshold), the dataset's as a line, the threshold dashed."""
    figure, axes = _figure("Quality score over time")
    line = _threshold_of(points, threshold)
    files = [point for point in points if point.scope == "file"]
    below = [point for point in files if line is not None and point.score < line]
    datasets = [point for point in points if point.scope == "dataset"]
    for label, colour, chosen in (
        ("file", _PASSED, [point for point in files if line is None or point.score >= line]),
        ("file below the threshold", _FAILED, below),
    ):
        if chosen:
            axes.scatter(_times(chosen), _scores(chosen), s=28, color=colour, label=label, zorder=3)
    if datasets:
        axes.plot(_times(datasets), _scores(datasets), color=_DATASET, marker="o", markersize=3, linewidth=1.6,
                  label="dataset (every live file)", zorder=4)  # fmt: skip
    if line is not None:
        axes.axhline(line, color=_THRESHOLD, linestyle="--", linewidth=1.2, label=f"threshold {line:g}", zorder=1)
    for point in below[-_NAMED_FAILURES:]:
        axes.annotate(point.file_name or "", (float(date2num(point.measured_at)), point.score), xytext=(6, -10),
                      textcoords="offset points", fontsize=8, color=_FAILED)  # fmt: skip
    lowest = min([*_scores(points), *([line] if line is not None else [])], default=100.0)
    axes.set_ylim(max(0.0, lowest - 8), 101)
    axes.set_ylabel("score (0 to 100)")
    if points:
        _date_axis(axes, _times(points), least_days=_LEAST_QUALITY_DAYS)
        figure.legend(loc="outside upper right", fontsize=8, frameon=False, ncols=4)
    else:
        _say(axes, "No quality measurement yet")
    return _png(figure)


def revenue_chart_png(months: Sequence[RevenueMonth], *, currency: str | None = None) -> bytes:
    """A bar per month of net revenue; a month whose returns exceed its sales falls below zero."""
    figure, axes = _figure("Net revenue by month" + (f" ({currency})" if currency else ""))
    if not months:
        _say(axes, "No sales in gold yet")
        return _png(figure)
    values = [month.net_revenue for month in months]
    starts = [float(date2num(month.month_start)) for month in months]
    axes.bar(starts, values, width=_BAR_DAYS, align="edge", color=[_BAR if value >= 0 else _LOSS for value in values])
    axes.axhline(0, color="#6b7280", linewidth=0.8)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    _date_axis(axes, [starts[0], starts[-1] + _BAR_DAYS], least_days=_LEAST_REVENUE_DAYS)
    return _png(figure)


def _times(points: Sequence[QualityPoint]) -> list[float]:
    return [float(date2num(point.measured_at)) for point in points]


def _scores(points: Sequence[QualityPoint]) -> list[float]:
    return [point.score for point in points]


def _figure(title: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=_SIZE_INCHES, dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, loc="left", fontsize=11)
    axes.grid(axis="y", color="#e5e7eb", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _date_axis(axes: Axes, times: Sequence[float], *, least_days: float) -> None:
    """Dates on the x axis, spanning at least `least_days` around `times` (in days, as matplotlib counts them), so
    one point or points seconds apart do not stretch across a span of seconds."""
    first, last = min(times), max(times)
    if last - first < least_days:
        middle = (first + last) / 2
        axes.set_xlim(middle - least_days / 2, middle + least_days / 2)
    locator = AutoDateLocator(minticks=3, maxticks=10)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _say(axes: Axes, message: str) -> None:
    axes.text(0.5, 0.5, message, transform=axes.transAxes, ha="center", va="center", fontsize=12, color="#6b7280")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_ylabel("")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _threshold_of(points: Sequence[QualityPoint], threshold: float | None) -> float | None:
    if threshold is not None:
        return threshold
    return next((point.threshold for point in reversed(points) if point.threshold is not None), None)


def _count(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _money(amount: float, currency: str | None) -> str:
    return f"{amount:,.2f}" + (f" {currency}" if currency else "")
