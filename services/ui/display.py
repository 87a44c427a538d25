"""How the job and compare pages write numbers, sizes, times and durations on the server (the
page's JavaScript writes live updates the same way through ``gentrain``'s formatters)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any


def duration(seconds: float | None) -> str:
    """``1h 02m``, ``3m 05s``, ``12s``; an em dash for none."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def size(count: int | None) -> str:
    """A byte count in B, KB, MB or GB (powers of 1,024)."""
    if count is None:
        return "—"
    value = float(count)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def when(iso: str | None) -> str:
    """An ISO time as ``2024-05-01 12:03:04 UTC``."""
    if not iso:
        return "—"
    moment = datetime.fromisoformat(iso)
    zone = " UTC" if moment.utcoffset() is not None and not moment.utcoffset() else ""
    return moment.strftime("%Y-%m-%d %H:%M:%S") + zone


def span(start: str | None, end: str | None) -> float | None:
    """Seconds from one ISO time to another, or None if either is missing."""
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def number(value: Any) -> str:
    """A result or parameter as text: 4 significant digits for floats, integers with separators."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


def is_shares(value: Any) -> bool:
    """Whether a result is a set of shares (a GAN's digit shares) drawn as a bar chart."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values())
    )


def percent(value: float | None) -> str:
    """A fraction as a whole percentage."""
    return "—" if value is None else f"{100 * value:.0f}%"
