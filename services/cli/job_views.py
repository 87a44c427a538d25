"""What people read of jobs, datasets and artifacts: the tables of the list commands and the
summary of ``gentrain status JOB`` (``-o json`` prints the API's answers instead)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from services.cli.output import age, number, parse_time, size, span, table, terminal_width

SHORT_ID = 8


def short_id(job_id: str | None) -> str:
    """The start of a job id that the tables show (and commands accept)."""
    return (job_id or "-")[:SHORT_ID]


def _key_result(job: dict[str, Any]) -> str:
    result = job.get("key_result") or {}
    return f"{result['name']}={number(result['value'])}" if result.get("name") else "-"


def _dataset(job: dict[str, Any]) -> str:
    if job.get("parent_id"):
        return f"from {short_id(job['parent_id'])}"
    return str(job.get("dataset") or "-")


def jobs_table(page: dict[str, Any]) -> str:
    """A page of ``GET /v1/jobs``, one job a line."""
    headers = ("id", "kind", "dataset", "status", "pri", "progress", "result", "age")
    rows = [
        (
            short_id(job["id"]),
            job["kind"] if job["kind"] != "sample" else f"sample/{job['model_kind']}",
            _dataset(job),
            job["status"],
            str(job.get("priority", "-")),
            f"{job['progress']:.0%}",
            _key_result(job),
            age(job["created_at"]),
        )
        for job in page["items"]
    ]
    return table(headers, rows, flexible=(1, 2, 6)) if rows else "no jobs"


def datasets_table(items: list[dict[str, Any]]) -> str:
    """The datasets of ``GET /v1/datasets``, one a line."""
    headers = ("name", "owner", "size", "images", "labels", "test", "age")
    rows = []
    for dataset in items:
        arrays = dataset.get("arrays") or {}
        images = (arrays.get("x_train") or {}).get("shape") or [0]
        test = (arrays.get("x_test") or {}).get("shape") or [0]
        rows.append(
            (
                dataset["name"],
                dataset.get("owner") or "-",
                size(dataset["size_bytes"]),
                str(images[0]),
                "yes" if "y_train" in arrays else "no",
                str(test[0]) if "x_test" in arrays else "-",
                age(dataset["created_at"]),
            )
        )
    return table(headers, rows, flexible=(0, 1)) if rows else "no datasets"


def dataset_text(dataset: dict[str, Any]) -> str:
    """One dataset: its row of the list, then each array's shape and type, and its sha256."""
    arrays = [
        (name, "×".join(str(n) for n in info["shape"]), info["dtype"])
        for name, info in (dataset.get("arrays") or {}).items()
    ]
    listed = table(("array", "shape", "dtype"), arrays)
    return f"{datasets_table([dataset])}\n\n{listed}\n\nsha256 {dataset['sha256']}"


def artifacts_table(items: list[dict[str, Any]], width: int | None = None) -> str:
    """A job's artifacts, in the order they were made."""
    headers = ("name", "size", "type", "age")
    rows = [
        (a["name"], size(a["size_bytes"]), a["content_type"], age(a["created_at"])) for a in items
    ]
    return table(headers, rows, flexible=(0, 2), width=width) if rows else "no artifacts yet"


def metrics_table(rows: list[dict[str, Any]]) -> str:
    """A job's metrics rows: the step, each metric (null: not finite, issue 10), the seconds."""
    names = list(dict.fromkeys(name for row in rows for name in row.get("values") or {}))
    lines = [
        (
            str(row["step"]),
            *(number((row.get("values") or {}).get(name)) for name in names),
            f"{row['seconds']:.1f}" if row.get("seconds") is not None else "-",
        )
        for row in rows
    ]
    return table(("step", *names, "seconds"), lines) if lines else "no metrics yet"


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return json.dumps(value)
    return number(value)


def _values(values: dict[str, Any] | None) -> str:
    return " ".join(f"{key}={_value(value)}" for key, value in (values or {}).items()) or "-"


def _timing(job: dict[str, Any]) -> str:
    text = f"created {age(job['created_at'])} ago"
    started, finished = job.get("started_at"), job.get("finished_at")
    begun, ended = parse_time(started), parse_time(finished)
    if begun and ended:
        text += f", ran {span((ended - begun).total_seconds())}"
    if finished:
        text += f", finished {age(finished)} ago"
    elif started:
        text += f", started {age(started)} ago"
    return text


def job_summary_text(job: dict[str, Any]) -> str:
    """``gentrain status JOB``: the job's state, progress, metrics, results and artifacts."""
    kind = job["kind"]
    if kind == "sample":
        kind = f"sample of {job['model_kind']} job {job['parent_id']}"
    status = job["status"] + (f" (attempt {job['attempts']})" if job.get("attempts", 0) > 1 else "")
    progress = f"{job['progress']:.0%}"
    if job.get("eta_seconds") is not None and job["status"] == "running":
        progress += f", about {span(job['eta_seconds'])} left"
    latest = job.get("latest_metrics") or {}
    metrics = f"step {latest['step']}: {_values(latest.get('values'))}" if latest else "-"
    lines = [
        ("job", job["id"]),
        ("kind", kind),
        ("dataset", str(job.get("dataset") or "-")),
        ("status", status),
        ("progress", progress),
        ("priority", str(job.get("priority", "-"))),
        ("time", _timing(job)),
        ("params", _values(job.get("params"))),
        ("metrics", metrics),
        ("results", _values(job.get("results"))),
    ]
    if job.get("error"):
        lines.insert(4, ("error", job["error"]))
    if job.get("expired"):
        lines.append(("expired", "retention removed its artifacts"))
    wrap = textwrap.TextWrapper(
        width=max(terminal_width(), 40),
        subsequent_indent=" " * 10,
        break_long_words=False,
        break_on_hyphens=False,
    )
    text = "\n".join(wrap.fill(f"{label:<9} {value}") for label, value in lines)
    artifacts = job.get("artifacts") or []
    count = job.get("artifact_count", len(artifacts))
    shown = f"{count}" if len(artifacts) >= count else f"the newest {len(artifacts)} of {count}"
    if not artifacts:
        return f"{text}\nartifacts none"
    listed = artifacts_table(artifacts, width=terminal_width() - 2)
    body = "\n".join("  " + line for line in listed.splitlines())
    return f"{text}\nartifacts {shown}:\n{body}"
