"""The reads behind the event streams: entries of the change log (``job_events``) after a cursor,
as Core statements on an autocommit connection (like ``job_reads``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, String, bindparam, case, func, select

from services.api.job_reads import DATASETS, EVENTS, JOBS, AnyRow
from shared.jobs import ChangeType

_E = EVENTS.c
_J = JOBS.c
_JOB_ID = bindparam("job_id", type_=String)

# What the list stream tells of a job (the table a dashboard keeps live).
LIST_TYPES = (ChangeType.STATUS.value, ChangeType.PROGRESS.value)

_ENTRY_COLUMNS = (_E.id, _E.job_id, _E.type, _E.status, _E.message, _E.payload, _E.at)
_JOB_ENTRIES = (
    select(*_ENTRY_COLUMNS)
    .where(
        _E.job_id == _JOB_ID,
        _E.id > bindparam("after"),
        _E.type.in_(bindparam("types", expanding=True)),
    )
    .order_by(_E.id)
    .limit(bindparam("limit"))
)
_JOB_STATE = select(_J.owner, _J.status).where(_J.id == _JOB_ID)
_HEAD = select(func.coalesce(func.max(_E.id), 0))
_LAST_BEFORE = select(_E.id).where(_E.at < bindparam("at")).order_by(_E.id.desc()).limit(1)
# Every entry above a floor (to tell which ids exist), with its job's list fields; log entries
# without their text (a stream that shows logs reads them by itself).
_NOT_LOG = _E.type != ChangeType.LOG.value
_ALL_ENTRIES = (
    select(
        _E.id,
        _E.job_id,
        _E.type,
        _E.status,
        _E.message,
        case((_NOT_LOG, _E.payload), else_=None).label("payload"),
        _E.at,
        _J.owner,
        _J.kind,
        _J.model_kind,
        _J.parent_id,
        _J.created_at,
        DATASETS.c.name.label("dataset_name"),
    )
    .select_from(
        EVENTS.join(JOBS, _J.id == _E.job_id).outerjoin(DATASETS, DATASETS.c.id == _J.dataset_id)
    )
    .where(_E.id > bindparam("floor"))
    .order_by(_E.id)
    .limit(bindparam("limit"))
)


def job_entries(
    connection: Connection, job_id: str, after: int, types: Sequence[str], limit: int
) -> list[AnyRow]:
    """One job's entries of ``types`` with ids above ``after``, oldest first."""
    params = {"job_id": job_id, "after": after, "types": list(types), "limit": limit}
    return list(connection.execute(_JOB_ENTRIES, params).all())


def job_state(connection: Connection, job_id: str) -> AnyRow | None:
    """A job's owner and status, or None if there is no such job."""
    return connection.execute(_JOB_STATE, {"job_id": job_id}).first()


def head(connection: Connection) -> int:
    """The highest id in the change log (0 when empty)."""
    return int(connection.scalar(_HEAD) or 0)


def last_before(connection: Connection, at: datetime) -> int:
    """The highest id of the entries written before ``at`` (0 if none): a scan backwards from the
    newest, so it costs what was written since."""
    return int(connection.scalar(_LAST_BEFORE, {"at": at}) or 0)


def entries_after(connection: Connection, floor: int, limit: int) -> list[AnyRow]:
    """Every job's entries above ``floor`` with their jobs' list fields (log entries without
    their text), oldest first."""
    return list(connection.execute(_ALL_ENTRIES, {"floor": floor, "limit": limit}).all())
