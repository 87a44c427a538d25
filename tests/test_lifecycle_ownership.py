"""Only ``shared/jobs/`` writes a job: its row, its status, its change log, metrics and
artifacts. Checked on the source (the syntax tree of every module of the service)."""

from __future__ import annotations

import ast
from pathlib import Path

from shared.db.models import Job

ROOT = Path(__file__).resolve().parents[1]
OWNER = ROOT / "shared" / "jobs"
PACKAGES = ("services", "shared", "workers")
JOB_TABLES = {"Job", "JobEvent", "Metric", "Artifact", "JOBS", "EVENTS", "METRICS", "ARTIFACTS"}
JOB_COLUMNS = set(Job.__table__.columns.keys()) - {"id"}


def job_writes(source: str) -> list[str]:
    """Every place in ``source`` that writes a job: what it does and its line."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else None
            if name in JOB_TABLES:
                found.append(f"line {node.lineno}: creates a {name} row")
            if name in ("update", "insert", "delete") and any(
                isinstance(arg, ast.Name) and arg.id in JOB_TABLES for arg in node.args
            ):
                found.append(f"line {node.lineno}: {name}() of a job table")
            if (
                isinstance(func, ast.Attribute)
                and func.attr in ("update", "insert", "delete")
                and isinstance(func.value, ast.Name)
                and func.value.id in JOB_TABLES
            ):
                found.append(f"line {node.lineno}: {func.value.id}.{func.attr}()")
            if name == "setattr" and node.args and not _is_self(node.args[0]):
                found.append(f"line {node.lineno}: setattr on a row")
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and target.attr in JOB_COLUMNS
                and not _is_self(target.value)
            ):
                found.append(f"line {target.lineno}: assigns .{target.attr}")
    return found


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def test_the_check_sees_each_kind_of_write() -> None:
    sample = """
job.status = "failed"
job.lease = None
record.progress += 0.1
session.add(JobEvent(job_id=job.id, status="queued"))
session.add(Metric(job_id=job_id, step=1, values={}))
session.execute(update(Job).where(Job.id == job_id).values(progress=1.0))
connection.execute(JOBS.update().values(status="queued"))
setattr(job, name, value)
self.status = 404
"""
    assert len(job_writes(sample)) == 8


def test_no_module_but_the_lifecycle_module_writes_a_job() -> None:
    offenders = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.is_relative_to(OWNER) or "migrations" in path.parts:
                continue
            if found := job_writes(path.read_text()):
                offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}
