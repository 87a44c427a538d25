"""The window of recent entries the streams of one API process share."""

from __future__ import annotations

from types import SimpleNamespace

from services.api.event_recent import RecentEntries


def rows(*ids: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(id=entry, job_id="j") for entry in ids]


def ids(taken: tuple[list[SimpleNamespace], int] | None) -> list[int] | None:
    return None if taken is None else [row.id for row in taken[0]]


def test_a_reader_finds_what_was_settled_after_its_mark() -> None:
    recent = RecentEntries()
    recent.extend(rows(1, 2))
    mark = recent.mark()
    recent.extend(rows(4, 3))  # settled out of id order: kept in that order
    taken = recent.since(mark)
    assert ids(taken) == [4, 3]
    assert taken is not None and recent.since(taken[1]) == ([], taken[1])


def test_a_reader_behind_what_was_dropped_must_read_the_database() -> None:
    recent = RecentEntries(capacity=4)
    behind = recent.mark()
    recent.extend(rows(1, 2, 3, 4))
    ahead = recent.mark()
    recent.extend(rows(5))  # over capacity: the oldest go
    assert recent.since(behind) is None
    assert ids(recent.since(ahead)) == [5]


def test_no_position_from_before_a_reset_is_valid() -> None:
    recent = RecentEntries()
    before = recent.mark()
    recent.extend(rows(1, 2))
    end = recent.mark()
    recent.reset()
    assert recent.since(before) is None and recent.since(end) is None
    assert recent.since(recent.mark()) == ([], recent.mark())


def test_a_jobs_reader_gets_only_that_jobs_entries_and_the_same_positions() -> None:
    recent = RecentEntries(capacity=4)
    mark = recent.mark()
    recent.extend([SimpleNamespace(id=1, job_id="a"), SimpleNamespace(id=2, job_id="b")])
    middle = recent.mark()
    recent.extend([SimpleNamespace(id=3, job_id="a"), SimpleNamespace(id=4, job_id="a")])
    assert ids(recent.since_for_job("a", mark)) == [1, 3, 4]
    assert ids(recent.since_for_job("a", middle)) == [3, 4]
    assert ids(recent.since_for_job("c", mark)) == []
    taken = recent.since_for_job("c", middle)
    assert taken is not None and taken[1] == recent.mark() == 4
    recent.extend([SimpleNamespace(id=5, job_id="b")])  # drops entry 1 (job a's first)
    assert recent.since_for_job("a", mark) is None
    assert ids(recent.since_for_job("b", middle)) == [5]
    assert ids(recent.since_for_job("a", middle)) == [3, 4]
