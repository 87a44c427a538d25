"""What the job and compare pages show of a job, read in a fixed handful of statements (never one
per artifact or metric) and shaped for the templates and the page's JavaScript."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, String, bindparam, func, select

from services.api import job_reads
from services.api.job_reads import EVENTS, AnyRow, JobRecord
from services.api.views import job_view
from shared.jobs import ChangeType
from shared.kinds import KIND_SPECS, SAMPLE_KIND

# The sample grids written during training: samples/epoch-000003.png, samples/step-000500.png.
GRID_NAME = re.compile(r"samples/(epoch|step)-(\d+)\.png")
# A job has at most a few hundred artifacts (100 grids, one checkpoint, TensorBoard files).
MAX_ARTIFACTS = 1000
# One metrics row per epoch or block of steps, at most 1,000 a job (shared.kinds).
MAX_METRIC_ROWS = 1000
# The end of the log the page starts with; the rest is a link to the whole log.
LOG_TAIL_CHARS = 64 * 1024
LOG_TAIL_CHUNKS = 400

_JOB_ID = bindparam("job_id", type_=String)
_LAST_ENTRY = select(func.coalesce(func.max(EVENTS.c.id), 0)).where(EVENTS.c.job_id == _JOB_ID)
_LOG_TAIL = (
    select(EVENTS.c.payload)
    .where(EVENTS.c.job_id == _JOB_ID, EVENTS.c.type == ChangeType.LOG.value)
    .order_by(EVENTS.c.id.desc())
    .limit(LOG_TAIL_CHUNKS)
)


@dataclass(frozen=True)
class LogTail:
    """The end of a job's log: its text, where that text starts and ends in the whole log."""

    text: str = ""
    start: int = 0
    end: int = 0
    truncated: bool = False


@dataclass
class JobPage:
    """Everything one job's page renders, and the change-log id it is current to."""

    view: dict[str, Any]
    # The highest change-log id of the job read before anything else: its stream resumes after
    # it, and whatever committed between the reads arrives again and is merged, not repeated.
    last_event_id: int
    metrics: dict[str, Any]
    grids: list[dict[str, Any]]
    final_grid: dict[str, Any] | None
    images: list[dict[str, Any]]
    artifacts: list[dict[str, Any]]
    log: LogTail = field(default_factory=LogTail)

    @property
    def unit(self) -> str:
        """What a metrics row's step counts: epochs, or steps for the GAN."""
        return step_unit(self.view)


def step_unit(view: dict[str, Any]) -> str:
    """``step`` for step-counted kinds (the GAN), else ``epoch``."""
    return "step" if view["model_kind"] == "gan" else "epoch"


def metric_columns(rows: Sequence[AnyRow]) -> dict[str, Any]:
    """Metrics rows as columns: ``{"steps": [...], "series": {name: [value or None, ...]}}``."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row.values or {}))
    steps = [row.step for row in rows]
    series = {name: [(row.values or {}).get(name) for row in rows] for name in names}
    return {"steps": steps, "series": series}


def final_grid_name(view: dict[str, Any]) -> str:
    """The grid a job ends with: its kind's final grid, or a sampling job's grid."""
    if view["kind"] == SAMPLE_KIND:
        return "samples/grid.png"
    spec = KIND_SPECS.get(view["model_kind"])
    return spec.final_grid if spec else "samples/grid.png"


def split_artifacts(
    view: dict[str, Any], artifacts: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, list[dict[str, Any]]]:
    """The training grids in step order, the final grid, and the other PNG images."""
    final_name = final_grid_name(view)
    grids, images, final = [], [], None
    for artifact in artifacts:
        name = artifact["name"]
        match = GRID_NAME.fullmatch(name)
        if match:
            grids.append({**artifact, "step": int(match.group(2))})
        elif name == final_name:
            final = artifact
        elif name.startswith("samples/") and name.endswith(".png"):
            images.append(artifact)
    grids.sort(key=lambda grid: grid["step"])
    return grids, final, images


def log_tail(connection: Connection, job_id: str) -> LogTail:
    """The last chunks of a job's log, at most LOG_TAIL_CHARS of them, in one statement."""
    chunks = list(connection.scalars(_LOG_TAIL, {"job_id": job_id}).all())
    if not chunks:
        return LogTail()
    newest = chunks[0]
    end = int(newest["job_offset"]) + len(newest["text"])
    parts: list[str] = []
    start = end
    for chunk in chunks:  # newest first
        if end - int(chunk["job_offset"]) > LOG_TAIL_CHARS and parts:
            break
        parts.append(chunk["text"])
        start = int(chunk["job_offset"])
    text = "".join(reversed(parts))
    if len(text) > LOG_TAIL_CHARS:
        cut = len(text) - LOG_TAIL_CHARS
        text, start = text[cut:], start + cut
    return LogTail(text=text, start=start, end=end, truncated=bool(newest.get("truncated")))


def read_job_page(
    connection: Connection, job_id: str, base_url: str, visible: Callable[[str], bool]
) -> JobPage | None:
    """The job's page, or None if there is no such job or its owner is not ``visible``."""
    last_event_id = int(connection.scalar(_LAST_ENTRY, {"job_id": job_id}) or 0)
    record = job_reads.fetch_job(connection, job_id, artifact_limit=MAX_ARTIFACTS)
    if record is None or not visible(record.job.owner):
        return None
    _, metric_rows = job_reads.job_metrics(connection, job_id, MAX_METRIC_ROWS)
    view = _view(record, base_url)
    artifacts = view["artifacts"]
    grids, final, images = split_artifacts(view, artifacts)
    page = JobPage(
        view=view,
        last_event_id=last_event_id,
        metrics=metric_columns(metric_rows),
        grids=grids,
        final_grid=final,
        images=images,
        artifacts=artifacts,
        log=log_tail(connection, job_id),
    )
    return page


def _view(record: JobRecord, base_url: str) -> dict[str, Any]:
    """The API's view of the job (read with up to MAX_ARTIFACTS artifacts: all a job makes)."""
    view = job_view(record, base_url)
    view["owner"] = record.job.owner
    return view
