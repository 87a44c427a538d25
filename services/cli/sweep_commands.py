"""``gentrain sweep submit|status|wait|cancel`` (issue 15): search a kind's parameters with Optuna,
each trial an ordinary job, through ``/v1/sweeps``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from services.cli.client_commands import _client, api_url_option, priority_option
from services.cli.kind_commands import parse_params, parse_value
from services.cli.output import emit, output_option, span, table
from services.cli.short_ids import resolve_sweep_id
from shared.kinds import KIND_SPECS, params_json_schema
from shared.sweeps.spec import PRUNERS, SAMPLERS

ENDED = {"succeeded", "failed", "cancelled"}


def parse_dimension(kind: str, text: str) -> tuple[str, dict[str, Any]]:
    """``name=low:high[:log]`` (a range) or ``name=a,b,c`` (values), read by the parameter's
    type; the API checks them against the parameter's own range."""
    name, sep, raw = text.partition("=")
    if not sep or not raw:
        raise click.BadParameter(f"{text!r} is not NAME=LOW:HIGH[:log] or NAME=A,B,C", None, None)
    prop = params_json_schema(KIND_SPECS[kind].params)["properties"].get(name, {})
    if ":" in raw:
        low, high, *rest = raw.split(":")
        if rest not in ([], ["log"]):
            raise click.BadParameter(f"{text!r}: only ':log' may follow LOW:HIGH", None, None)
        bounds = [parse_value(name, prop, part) if prop else float(part) for part in (low, high)]
        return name, {"low": bounds[0], "high": bounds[1], "log": rest == ["log"]}
    values = [parse_value(name, prop, part) if prop else part for part in raw.split(",")]
    return name, {"values": values}


def sweep_text(sweep: dict[str, Any]) -> str:
    """A sweep as people read it: what it searches, where it stands, then its trials' table."""
    objective = sweep["objective"]
    best = sweep.get("best")
    counts = " ".join(f"{name}={count}" for name, count in sweep["counts"].items() if count)
    lines = [
        f"sweep     {sweep['id']}",
        f"kind      {sweep['kind']} on {sweep['dataset']}",
        f"status    {sweep['status']} ({counts or 'no trials yet'})",
        f"search    {sweep['sampler']}, {sweep['trials']} trials, {sweep['parallel']} at a time,"
        f" pruner {sweep['pruner']}",
        f"objective {objective['direction']} {objective['metric']}",
    ]
    if best:
        chosen = " ".join(f"{k}={v}" for k, v in best["params"].items())
        lines.append(f"best      {best['objective']:.6g} (job {best['job_id']}: {chosen})")
    if sweep.get("importances"):
        shares = " ".join(f"{k}={v:.2f}" for k, v in sweep["importances"].items())
        lines.append(f"importance {shares}")
    rows = sweep.get("trial_jobs") or []
    if rows:
        names = list(sweep.get("space") or rows[0]["params"])
        cells = [
            [
                str(row["trial"]),
                row["job_id"][:8],
                row["status"],
                *(str(row["params"].get(name)) for name in names),
                "-" if row["objective"] is None else f"{row['objective']:.6g}",
                "-" if row["duration_seconds"] is None else span(row["duration_seconds"]),
            ]
            for row in rows
        ]
        headers = ["trial", "job", "status", *names, objective["metric"], "time"]
        lines += ["", table(headers, cells)]
    return "\n".join(lines)


@click.group()
def sweep() -> None:
    """Search a kind's parameters: trials are jobs, Optuna picks them."""


@sweep.command("submit")
@click.argument("kind", type=click.Choice(list(KIND_SPECS)))
@click.option("--dataset", required=True)
@click.option("--param", "-p", "params", multiple=True, help="KEY=VALUE fixed in every trial")
@click.option(
    "--space",
    "space_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='a JSON file: {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": true}, ...}',
)
@click.option(
    "--search", "-s", "dims", multiple=True, help="NAME=LOW:HIGH[:log] or NAME=A,B,C, repeatable"
)
@click.option("--sampler", type=click.Choice(SAMPLERS), default="tpe", show_default=True)
@click.option("--trials", type=int, default=None, help="default: the grid's size, else 10")
@click.option("--parallel", type=int, default=1, show_default=True, help="trials at a time")
@click.option("--objective", "metric", required=True, help="a result the kind reports: test_mse")
@click.option("--direction", type=click.Choice(["minimize", "maximize"]), default=None)
@click.option("--pruner", type=click.Choice(PRUNERS), default="none", show_default=True)
@click.option("--seed", type=int, default=None)
@priority_option
@api_url_option
def sweep_submit(
    kind: str,
    dataset: str,
    params: tuple[str, ...],
    space_file: Path | None,
    dims: tuple[str, ...],
    sampler: str,
    trials: int | None,
    parallel: int,
    metric: str,
    direction: str | None,
    pruner: str,
    seed: int | None,
    priority: int | None,
    api_url: str | None,
) -> None:
    """Start a sweep over KIND's parameters; prints the sweep's id."""
    space: dict[str, Any] = json.loads(space_file.read_text()) if space_file else {}
    space.update(parse_dimension(kind, text) for text in dims)
    if not space:
        raise click.UsageError("give the space to search: --space FILE.json or -s NAME=...")
    objective = {"metric": metric} | ({"direction": direction} if direction else {})
    body: dict[str, Any] = {
        "kind": kind,
        "dataset": dataset,
        "params": parse_params(params, KIND_SPECS[kind].params),
        "space": space,
        "sampler": sampler,
        "parallel": parallel,
        "objective": objective,
        "pruner": pruner,
    }
    optional = {"trials": trials, "seed": seed, "priority": priority}
    body.update({name: value for name, value in optional.items() if value is not None})
    created = _client(api_url).submit_sweep(body)
    click.echo(created["id"])


@sweep.command("status")
@click.argument("sweep_id", required=False)
@output_option
@api_url_option
def sweep_status(sweep_id: str | None, fmt: str, api_url: str | None) -> None:
    """A sweep and its trials' table; without SWEEP_ID, recent sweeps."""
    client = _client(api_url)
    if sweep_id:
        emit(client.sweep(resolve_sweep_id(client, sweep_id)), fmt, sweep_text)
        return
    listed = client.sweeps()

    def as_table(data: dict[str, Any]) -> str:
        rows = [
            [
                item["id"][:8],
                item["kind"],
                item["status"],
                f"{sum(item['counts'].values())}/{item['trials']}",
                item["objective"]["metric"],
                "-" if not item["best"] else f"{item['best']['objective']:.6g}",
            ]
            for item in data["items"]
        ]
        return table(["id", "kind", "status", "trials", "objective", "best"], rows)

    emit(listed, fmt, as_table)


@sweep.command("wait")
@click.argument("sweep_id")
@click.option("--timeout", type=float, default=0, help="give up after this many seconds (0: never)")
@click.option("--interval", type=float, default=2.0, show_default=True, help="seconds a poll")
@api_url_option
def sweep_wait(sweep_id: str, timeout: float, interval: float, api_url: str | None) -> None:
    """Follow a sweep until it ends (a line when its trials move), then show it; exit 1 unless
    it succeeded."""
    client = _client(api_url)
    sweep_id = resolve_sweep_id(client, sweep_id)
    started, shown = time.monotonic(), ""
    while True:
        sweep = client.sweep(sweep_id)
        counts = " ".join(f"{k}={v}" for k, v in sweep["counts"].items() if v)
        line = f"{sweep['status']} {counts}".strip()
        if line != shown:
            click.echo(line)
            shown = line
        if sweep["status"] in ENDED:
            break
        if timeout and time.monotonic() - started > timeout:
            raise click.ClickException(f"sweep still {sweep['status']} after {timeout:g} s")
        time.sleep(interval)
    click.echo(sweep_text(sweep))
    sys.exit(0 if sweep["status"] == "succeeded" else 1)


@sweep.command("cancel")
@click.argument("sweep_id")
@api_url_option
def sweep_cancel(sweep_id: str, api_url: str | None) -> None:
    """Cancel a sweep: no more trials, and its queued and running ones cancelled."""
    client = _client(api_url)
    sweep_id = resolve_sweep_id(client, sweep_id)
    cancelled = client.cancel_sweep(sweep_id)
    counts = " ".join(f"{k}={v}" for k, v in cancelled["counts"].items() if v)
    click.echo(f"{sweep_id} {cancelled['status']} {counts}".strip())


COMMANDS: tuple[click.Command, ...] = (sweep,)
