"""How list and show commands print: aligned tables sized to the terminal, or ``-o json``.

No YAML: PyYAML is not one of gentrain's dependencies, and JSON serves scripts (and ``jq``)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click

FORMATS = ("table", "json")
GAP = "  "
# How narrow a clipped column gets (four characters and the ellipsis).
MIN_CLIPPED = 5

output_option = click.option(
    "--output",
    "-o",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people, json for scripts (the API's whole answer)",
)


def terminal_width() -> int:
    """Columns of the terminal (``COLUMNS`` when set; 100 when not a terminal)."""
    return shutil.get_terminal_size((100, 24)).columns


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    flexible: Sequence[int] = (),
    width: int | None = None,
) -> str:
    """Rows under upper-case headers in aligned columns. Past ``width`` (default: the terminal)
    the ``flexible`` columns give way, widest first, clipped with an ellipsis down to a few
    characters; the others (ids, statuses) are never cut, and what still does not fit wraps."""
    width = width or terminal_width()
    lines = [[h.upper() for h in headers], *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    while sum(widths) + len(GAP) * (len(widths) - 1) > width:
        shrinkable = [i for i in flexible if widths[i] > MIN_CLIPPED]
        if not shrinkable:
            break
        widths[max(shrinkable, key=lambda i: widths[i])] -= 1
    text = (
        GAP.join(_clip(cell, w).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
    return "\n".join(text)


def emit(data: Any, fmt: str, as_table: Callable[[Any], str]) -> None:
    """Print ``data`` as JSON, or as ``as_table`` renders it."""
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(as_table(data))


def parse_time(value: str | None) -> datetime | None:
    """An ISO timestamp from the API (naive ones are UTC), or None."""
    if not value:
        return None
    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def span(seconds: float) -> str:
    """A duration as people say it: 45s, 12m, 3h, 2d."""
    seconds = max(seconds, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def age(value: str | None, now: datetime | None = None) -> str:
    """How long ago an API timestamp was (``-`` for none)."""
    at = parse_time(value)
    if at is None:
        return "-"
    return span(((now or datetime.now(UTC)) - at).total_seconds())


def size(num_bytes: int | None) -> str:
    """A byte count in B, KiB, MiB or GiB."""
    if num_bytes is None:
        return "-"
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def number(value: Any) -> str:
    """A result or metric value, short: 4 significant digits; null for a non-finite one."""
    if value is None:
        return "null"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.4g}"
