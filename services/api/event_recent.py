"""The change log's recent entries, read once per API process and shared by its open streams.

The process's watcher (``event_wakeups``) reads each new entry of the change log once and keeps
it here; a stream that has caught up takes what it has not sent from this window instead of
querying the database, so a change costs one read per process however many streams watch it.
A stream reads the database itself only to replay history, or when it fell so far behind that
the window dropped entries it had not looked at yet.

Each entry has a position (a sequence number). A stream notes ``mark()`` before its last read of
the database: whatever that read missed was settled by the watcher after the mark, so it is at
a position from the mark on (or the window says it was dropped). Entries appear in the order the
watcher settled them (``CrossJobCursor``), not strictly by id. Log entries are kept without their
text (a stream that shows logs reads them itself).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from services.api.job_reads import AnyRow

CAPACITY = 5000


class RecentEntries:
    """A bounded window of recently settled entries, each at a position."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._lock = threading.Lock()
        self._capacity = capacity
        self._rows: list[AnyRow] = []
        self._first = 0  # the position of _rows[0]

    def reset(self) -> None:
        """Start again empty (the watcher restarted); no earlier position is valid any more."""
        with self._lock:
            self._first += len(self._rows) + 1
            self._rows = []

    def extend(self, rows: Sequence[AnyRow]) -> None:
        """Add entries just settled; drop the oldest past the capacity."""
        with self._lock:
            self._rows.extend(rows)
            excess = len(self._rows) - self._capacity
            if excess > 0:
                dropped = max(excess, self._capacity // 4)
                del self._rows[:dropped]
                self._first += dropped

    def mark(self) -> int:
        """The position the next entry will have."""
        with self._lock:
            return self._first + len(self._rows)

    def since(self, position: int) -> tuple[list[AnyRow], int] | None:
        """The entries from ``position`` on and the position after them; None if some of them
        were dropped (the reader must read the database again)."""
        with self._lock:
            end = self._first + len(self._rows)
            if not self._first <= position <= end:
                return None
            return self._rows[position - self._first :], end
