"""Small inline SVG charts, drawn on the server: no chart library, no JavaScript. They stretch
to the page's width, so their labels are HTML beside them (text in a stretched SVG would be
distorted); only numbers and our own words go into them."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

from markupsafe import Markup

from receiver.store.results import Day
from receiver.store.tests import Run

WIDTH: Final = 600
HEIGHT: Final = 160
PAD: Final = 24


def days_chart(days: Sequence[Day]) -> Markup:
    """Pass rate per day as bars (0–100 %), mean duration as a line over them."""
    if not days:
        return Markup("")
    step = (WIDTH - 2 * PAD) / len(days)
    inner = HEIGHT - 2 * PAD
    longest = max((d.duration_ms or 0) for d in days) or 1
    parts = [_frame("Pass rate per day (green share of each bar) and mean duration (line)")]
    points: list[tuple[float, float]] = []
    for index, day in enumerate(days):
        rate = day.passed / day.total if day.total else 0
        x = PAD + index * step
        height = inner * rate
        width = max(step - 2, 1)
        parts.append(
            f"<g><title>{escape(day.day)}: {rate:.0%} of {day.total} passed</title>"
            f'<rect class="bar-failed" x="{x + 1:.1f}" y="{PAD}" width="{width:.1f}" '
            f'height="{inner - height:.1f}"/>'
            f'<rect class="bar" x="{x + 1:.1f}" y="{PAD + inner - height:.1f}" '
            f'width="{width:.1f}" height="{height:.1f}"/></g>'
        )
        if day.duration_ms is not None:
            y = PAD + inner - inner * day.duration_ms / longest
            points.append((x + step / 2, y))
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    parts.append(f'<polyline class="line" points="{line}"/>')
    parts += [f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3"/>' for x, y in points]
    parts.append("</svg>")
    return Markup("".join(parts))


def duration_chart(runs: Sequence[Run]) -> Markup:
    """A test's duration run by run, oldest first."""
    timed = [run for run in runs if run.duration_ms is not None]
    if len(timed) < 2:
        return Markup("")
    longest = max(run.duration_ms or 0 for run in timed) or 1
    step = (WIDTH - 2 * PAD) / (len(timed) - 1)
    inner = HEIGHT - 2 * PAD
    points = " ".join(
        f"{PAD + i * step:.1f},{PAD + inner - inner * (run.duration_ms or 0) / longest:.1f}"
        for i, run in enumerate(timed)
    )
    return Markup(
        _frame(f"Duration of the last {len(timed)} runs; the longest {longest / 1000:.1f}s")
        + f'<polyline class="line" points="{points}"/>'
        + "</svg>"
    )


def _frame(title: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}"'
        f' preserveAspectRatio="none"><title>{escape(title)}</title>'
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" '
        f'y2="{HEIGHT - PAD}"/>'
    )
