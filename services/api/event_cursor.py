"""A reader's position in the change log of many jobs, which tolerates ids committed out of order.

One job's entries commit in id order (``shared.jobs`` locks the job's row), but two jobs' need
not: a transaction may take id 10, another take id 11 and commit first. A reader that went on
from 11 would never see 10. So a cursor keeps a ``floor`` below which every id is settled (read,
or given up on) and remembers which ids above it it has already read. A missing id is waited for
for ``GAP_GRACE_SECONDS`` (longer than any of the service's transactions can stay open: the
database ends an idle one after 15 s) and then treated as rolled back.

The token a client resumes from names the floor and the ids above it that were delivered to it:
``"120"`` or ``"120:123,125"``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

GAP_GRACE_SECONDS = 30.0
# Past this many ids at once a hole is not a transaction in flight (a sequence jumped after a
# crash, say): settle it at once rather than wait for each id.
MAX_TRACKED_GAP = 10_000


class CursorError(ValueError):
    """A resume token that is not one this service gave out."""


class CrossJobCursor:
    """The settled floor of the change log, the ids read above it, and the holes in between."""

    def __init__(self, floor: int, delivered: Iterable[int] = ()) -> None:
        self.floor = floor
        self._seen = {entry for entry in delivered if entry > floor}
        self._delivered = set(self._seen)
        self._gaps: dict[int, float] = {}

    @classmethod
    def parse(cls, token: str) -> CrossJobCursor:
        """The cursor a token names; CursorError if it is malformed."""
        floor_part, _, ids_part = token.strip().partition(":")
        try:
            floor = int(floor_part)
            delivered = [int(part) for part in ids_part.split(",")] if ids_part else []
        except ValueError:
            raise CursorError(f"not an event id of this stream: {token[:40]!r}") from None
        if floor < 0 or len(delivered) > MAX_TRACKED_GAP:
            raise CursorError(f"not an event id of this stream: {token[:40]!r}")
        return cls(floor, delivered)

    def token(self) -> str:
        """Where a reader resumes: the floor and what was delivered above it."""
        above = sorted(entry for entry in self._delivered if entry > self.floor)
        if not above:
            return str(self.floor)
        return f"{self.floor}:{','.join(map(str, above))}"

    def take(self, ids: Iterable[int], now: float | None = None, old: bool = False) -> list[int]:
        """Of ``ids`` (entries found above the floor, ascending), those not read before; the floor
        then moves up over every settled id. ``old``: these entries were written longer than
        ``GAP_GRACE_SECONDS`` ago, so an id missing below them was rolled back long since (a
        reader replaying an old log must not wait at each such hole)."""
        fresh = [entry for entry in ids if entry > self.floor and entry not in self._seen]
        self._seen.update(fresh)
        now = time.monotonic() if now is None else now
        if old and fresh:
            for missing in range(self.floor + 1, min(max(fresh), self.floor + MAX_TRACKED_GAP)):
                if missing not in self._seen:
                    self._gaps[missing] = now - GAP_GRACE_SECONDS
        self._settle(now)
        return fresh

    def delivered(self, entry: int) -> None:
        """Note that ``entry`` went to the client (it is named in the token until settled)."""
        if entry > self.floor:
            self._delivered.add(entry)

    @property
    def waiting(self) -> bool:
        """Whether some id below one already read has not appeared yet."""
        return bool(self._gaps)

    def _settle(self, now: float) -> None:
        if not self._seen:
            return
        top = max(self._seen)
        if top - self.floor - len(self._seen) > MAX_TRACKED_GAP:
            self._gaps.clear()
            self._advance_to(top)
            return
        for missing in range(self.floor + 1, top):
            if missing not in self._seen:
                self._gaps.setdefault(missing, now)
        while self._seen:
            following = self.floor + 1
            if following in self._seen:
                self._seen.discard(following)
                self._delivered.discard(following)
                self._gaps.pop(following, None)
                self.floor = following
                continue
            noticed = self._gaps.get(following)
            if noticed is not None and now - noticed >= GAP_GRACE_SECONDS:
                del self._gaps[following]
                self.floor = following  # rolled back, or a sequence value never used
                continue
            break

    def _advance_to(self, top: int) -> None:
        self.floor = top
        self._seen = {entry for entry in self._seen if entry > top}
        self._delivered = {entry for entry in self._delivered if entry > top}
