"""A self-contained HTML page with one line chart (inline SVG, no scripts), for curves such as
accuracy against the share of calls escalated."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

COLOURS = ["#264653", "#e76f51", "#2a9d8f", "#e9c46a"]


def write_line_chart(
    path: Path,
    title: str,
    x_label: str,
    y_label: str,
    series: dict[str, Sequence[tuple[float, float]]],
    notes: Sequence[str] = (),
) -> None:
    """`series`: name -> points with x and y in [0, 1]."""
    left, top, width, height = 60, 20, 480, 300
    ys = [y for points in series.values() for _, y in points] or [0.0, 1.0]
    y_low, y_high = max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.05)
    span = (y_high - y_low) or 1.0

    def at(x: float, y: float) -> str:
        return f"{left + x * width:.1f},{top + height - (y - y_low) / span * height:.1f}"

    parts = [f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#999"/>']
    for i in range(6):
        x, y = i / 5, y_low + span * i / 5
        parts.append(
            f'<text x="{left + x * width:.0f}" y="{top + height + 16}" font-size="11" '
            f'text-anchor="middle">{x:.0%}</text>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{top + height - i / 5 * height + 4:.0f}" font-size="11" '
            f'text-anchor="end">{y:.2f}</text>'
        )
    for n, (name, points) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        line = " ".join(at(x, y) for x, y in points)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(
            f'<text x="{left + 10}" y="{top + 16 + 16 * n}" font-size="12" fill="{colour}">{html.escape(name)}</text>'
        )
    parts.append(
        f'<text x="{left + width / 2}" y="{top + height + 34}" font-size="12" '
        f'text-anchor="middle">{html.escape(x_label)}</text>'
    )
    parts.append(
        f'<text x="14" y="{top + height / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + height / 2})">{html.escape(y_label)}</text>'
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" height="{top + height + 50}">'
        + "".join(parts)
        + "</svg>"
    )
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    path.write_text(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<h1 style='font:16px sans-serif'>{html.escape(title)}</h1>{svg}"
        f"<ul style='font:13px sans-serif'>{items}</ul>\n"
    )
