"""Commands that follow jobs live on the event stream: ``wait`` (a progress bar) and ``events``
(each event as a line, or JSON). Both fall back to polling when the stream cannot be had."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from services.cli.client import ApiClient
from services.cli.client_commands import TERMINAL, _call, _client, _print, api_url_option
from services.cli.event_stream import StreamEvent, StreamUnavailable, follow_job
from services.cli.short_ids import complete_job_ids, resolve_job_id


def _metric_text(values: dict[str, Any]) -> str:
    # A value that was not finite is null (issue 10).
    return " ".join(f"{k}={v:.4g}" if v is not None else f"{k}=null" for k, v in values.items())


class _Bar:
    """The progress bar of ``wait`` and the label beside it."""

    def __init__(self, bar: Any, job: dict[str, Any]) -> None:
        self.bar, self.kind, self.job_id = bar, job["kind"], job["id"]
        self.shown, self.last_status = 0, job["status"]
        self.values: dict[str, Any] = (job.get("latest_metrics") or {}).get("values") or {}
        self.show(job["progress"])

    def show(self, progress: float | None = None) -> None:
        if progress is not None:
            target = int(progress * 1000)
            self.bar.update(target - self.shown)
            self.shown = target
        values = _metric_text(self.values)
        self.bar.label = f"{self.kind} {self.job_id[:8]} {self.last_status} {values}"
        self.bar.render_progress()

    def apply(self, event: StreamEvent) -> None:
        if event.type == "status":
            self.last_status = event.data["status"]
        elif event.type == "metrics":
            self.values = event.data.get("values") or {}
        self.show(event.data.get("progress") if event.type == "progress" else None)


def _over(started: float, timeout: float, status: str) -> None:
    if timeout and time.monotonic() - started > timeout:
        raise click.ClickException(f"job still {status} after {timeout:g} s")


def _follow(client: ApiClient, job_id: str, bar: _Bar, started: float, timeout: float) -> None:
    """Move the bar on the job's events until it ends; poll if the stream cannot be had."""
    try:
        for event in follow_job(client, job_id):
            bar.apply(event)
            if bar.last_status in TERMINAL:
                return
            _over(started, timeout, bar.last_status)
    except StreamUnavailable:
        pass
    while True:
        job = _call(lambda: client.job(job_id))
        bar.last_status = job["status"]
        bar.values = (job.get("latest_metrics") or {}).get("values") or {}
        bar.show(job["progress"])
        if job["status"] in TERMINAL:
            return
        _over(started, timeout, job["status"])
        time.sleep(0.5)


@click.command()
@click.argument("job_id", shell_complete=complete_job_ids)
@click.option(
    "--timeout", type=float, default=0.0, help="give up after this many seconds (0: never)"
)
@api_url_option
def wait(job_id: str, timeout: float, api_url: str | None) -> None:
    """Show a progress bar until the job ends; exit 1 unless it succeeded."""
    client = _client(api_url)
    started = time.monotonic()
    job_id = resolve_job_id(client, job_id)
    job = _call(lambda: client.job(job_id))
    with click.progressbar(length=1000, label=f"{job['kind']} {job_id[:8]}", show_eta=False) as bar:
        _call(lambda: _follow(client, job_id, _Bar(bar, job), started, timeout))
    job = _call(lambda: client.job(job_id))
    click.echo(f"{job_id} {job['status']}" + (f": {job['error']}" if job.get("error") else ""))
    if job["results"]:
        _print(job["results"])
    sys.exit(0 if job["status"] == "succeeded" else 1)


def _event_line(event: StreamEvent) -> str:
    data = event.data
    if event.type == "status":
        message = f" ({data['message']})" if data.get("message") else ""
        return f"status    {data['status']}{message}"
    if event.type == "progress":
        eta = data.get("eta_seconds")
        return f"progress  {data['progress']:.0%}" + (f" eta {eta:.0f}s" if eta is not None else "")
    if event.type == "metrics":
        return f"metrics   step {data['step']} {_metric_text(data.get('values') or {})}"
    if event.type == "artifact":
        return f"artifact  {data['name']} {data['url']}"
    if event.type == "log":
        return "log       " + data.get("text", "").rstrip("\n").replace("\n", "\n          ")
    return f"{event.type:<9} {json.dumps(data)}"


@click.command()
@click.argument("job_id", shell_complete=complete_job_ids)
@click.option("--logs", "with_logs", is_flag=True, help="include the job's log lines")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per event")
@api_url_option
def events(job_id: str, with_logs: bool, as_json: bool, api_url: str | None) -> None:
    """Print JOB_ID's events (history, progress, metrics, artifacts) from the start until it
    ends, as they happen."""
    client = _client(api_url)
    job_id = resolve_job_id(client, job_id)

    def show() -> None:
        for event in follow_job(client, job_id, logs=with_logs):
            if not event.type:
                continue  # keep-alive
            if as_json:
                click.echo(json.dumps({"id": event.id, "event": event.type, "data": event.data}))
            else:
                click.echo(_event_line(event))

    try:
        _call(show)
    except StreamUnavailable as error:
        raise click.ClickException(f"the event stream is not available: {error}") from None


COMMANDS: tuple[click.Command, ...] = (wait, events)
