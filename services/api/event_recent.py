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
from collections import deque
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
        # Each job's entries in the window with their positions (a job's stream looks at its
        # own, not at every job's).
        self._by_job: dict[str, deque[tuple[int, AnyRow]]] = {}

    def reset(self) -> None:
        """Start again empty (the watcher restarted); no earlier position is valid any more."""
        with self._lock:
            self._first += len(self._rows) + 1
            self._rows = []
            self._by_job = {}

    def extend(self, rows: Sequence[AnyRow]) -> None:
        """Add entries just settled; drop the oldest past the capacity."""
        with self._lock:
            position = self._first + len(self._rows)
            for offset, row in enumerate(rows):
                self._by_job.setdefault(row.job_id, deque()).append((position + offset, row))
            self._rows.extend(rows)
            excess = len(self._rows) - self._capacity
            if excess > 0:
                dropped = max(excess, self._capacity // 4)
                for row in self._rows[:dropped]:
                    entries = self._by_job[row.job_id]
                    entries.popleft()
                    if not entries:
                        del self._by_job[row.job_id]
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

    def since_for_job(self, job_id: str, position: int) -> tuple[list[AnyRow], int] | None:
        """``since`` for the entries of one job only."""
        with self._lock:
            end = self._first + len(self._rows)
            if not self._first <= position <= end:
                return None
            found: list[AnyRow] = []
            for at, row in reversed(self._by_job.get(job_id, ())):
                if at < position:
                    break
                found.append(row)
            found.reverse()
            return found, end
