"""The CLI as people read it (issue 17), against a real API served over HTTP on loopback: list
tables sized to the terminal and their ``-o json`` form, the summary of ``gentrain status JOB``,
one-line errors (API down, 401, 404, 409, 422; ``--debug`` for the traceback), short job ids, and
the grid ``gentrain download`` picks."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from werkzeug.serving import make_server

from services.api import create_app
from services.cli.main import cli
from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, finish, record_artifact
from shared.settings import Settings
from shared.storage import job_key, open_store
from tests.conftest import create_test_job, free_port


def serve(settings: Settings) -> Iterator[str]:
    port = free_port()
    server = make_server("127.0.0.1", port, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join()


@pytest.fixture
def api_url(settings: Settings) -> Iterator[str]:
    yield from serve(settings)


def gentrain(api_url: str, *args: str, columns: int = 200) -> Result:
    env = {"GENTRAIN_API_KEY": "", "COLUMNS": str(columns)}
    return CliRunner().invoke(cli, [*args, "--api-url", api_url], env=env)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def one_line_error(result: Result) -> str:
    """The error's one line on stderr (nothing on stdout), after checking the exit code."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def finished_job(
    settings: Settings, kind: str, results: dict[str, Any], images: dict[str, bytes]
) -> str:
    """A succeeded job with ``results`` and stored image artifacts, in the order given."""
    job_id = create_test_job(settings.database_url, kind)
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id)
        assert job is not None and job.lease is not None
        lease = job.lease
    store = open_store(settings)
    for name, data in images.items():
        stored = store.put_bytes(job_key(job_id, name), data, "image/png")
        with session_scope(settings.database_url) as session:
            record_artifact(session, job_id, lease, name, stored, "image/png")
    with session_scope(settings.database_url) as session:
        finish(session, job_id, lease, JobStatus.SUCCEEDED, results=results)
    return job_id


def table_rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_list_tables_and_their_json(api_url: str, settings: Settings, mnist_path: Path) -> None:
    ok(gentrain(api_url, "datasets", "upload", str(mnist_path), "--name", "mnist"))
    datasets = json.loads(ok(gentrain(api_url, "datasets", "list", "-o", "json")))
    assert [d["name"] for d in datasets] == ["mnist"]
    header, row = table_rows(ok(gentrain(api_url, "datasets", "list")))
    assert header == ["NAME", "OWNER", "SIZE", "IMAGES", "LABELS", "TEST", "AGE"]
    arrays = datasets[0]["arrays"]
    assert row[0] == "mnist" and str(arrays["x_train"]["shape"][0]) in row
    assert ("yes" if "y_train" in arrays else "no") in row
    shown = ok(gentrain(api_url, "datasets", "show", "mnist"))
    assert table_rows(shown)[:2] == [header, row] and f"sha256 {datasets[0]['sha256']}" in shown
    shape = "×".join(str(n) for n in arrays["x_train"]["shape"])
    assert ["x_train", shape, arrays["x_train"]["dtype"]] in table_rows(shown)
    as_json = ok(gentrain(api_url, "datasets", "show", "mnist", "-o", "json"))
    assert json.loads(as_json) == datasets[0]

    queued = ok(gentrain(api_url, "submit", "autoencoder", "--dataset", "mnist")).strip()
    done = finished_job(settings, "classifier", {"test_accuracy": 0.9123, "test_loss": 0.3}, {})

    listed = ok(gentrain(api_url, "status"))
    header, *rows = table_rows(listed)
    assert header == ["ID", "KIND", "DATASET", "STATUS", "PRI", "PROGRESS", "RESULT", "AGE"]
    by_id = {row[0]: row for row in rows}
    assert set(by_id) == {queued[:8], done[:8]}
    assert by_id[queued[:8]][1:4] == ["autoencoder", "mnist", "queued"]
    assert by_id[done[:8]][3] == "succeeded" and "test_accuracy=0.9123" in by_id[done[:8]]

    page = json.loads(ok(gentrain(api_url, "status", "-o", "json")))
    assert {item["id"] for item in page["items"]} == {queued, done} and page["total"] == 2
    done_item = next(item for item in page["items"] if item["id"] == done)
    assert done_item["key_result"] == {"name": "test_accuracy", "value": 0.9123}

    only = table_rows(ok(gentrain(api_url, "status", "--status", "succeeded")))
    assert [row[0] for row in only[1:]] == [done[:8]]
    only = table_rows(ok(gentrain(api_url, "status", "--kind", "autoencoder")))
    assert [row[0] for row in only[1:]] == [queued[:8]]
    limited = gentrain(api_url, "status", "--limit", "1")
    assert len(table_rows(ok(limited))) == 2 and "(1 of 2; --limit shows more)" in limited.stderr
    assert ok(gentrain(api_url, "status", "--status", "failed")).strip() == "no jobs"

    narrow = ok(gentrain(api_url, "status", columns=64))
    assert all(len(line) <= 64 for line in narrow.splitlines()), narrow
    assert "…" in narrow  # kind, dataset and result give way; ids and statuses stay whole
    assert {row[0] for row in table_rows(narrow)[1:]} == {queued[:8], done[:8]}
    assert "succeeded" in narrow


def test_status_of_one_job_and_its_artifacts(api_url: str, settings: Settings) -> None:
    images = {"samples/predictions.png": b"\x89PNG one", "samples/epoch-000002.png": b"\x89PNG 2"}
    job_id = finished_job(settings, "classifier", {"test_accuracy": 0.875}, images)

    summary = ok(gentrain(api_url, "status", job_id))
    lines = summary.splitlines()
    assert lines[0] == f"job       {job_id}"
    assert "status    succeeded" in lines
    assert "results   test_accuracy=0.875" in lines
    assert "artifacts 2:" in lines
    assert any("samples/predictions.png" in line for line in lines)

    view = json.loads(ok(gentrain(api_url, "status", job_id, "-o", "json")))
    assert view["id"] == job_id and view["results"] == {"test_accuracy": 0.875}
    assert {a["name"] for a in view["artifacts"]} == set(images)

    header, *rows = table_rows(ok(gentrain(api_url, "artifacts", job_id[:8])))
    assert header == ["NAME", "SIZE", "TYPE", "AGE"]
    assert [row[0] for row in rows] == list(images)
    listed = json.loads(ok(gentrain(api_url, "artifacts", job_id, "-o", "json")))
    assert [a["name"] for a in listed] == list(images)


def test_download_picks_the_grid_a_person_asked_for(
    api_url: str, settings: Settings, tmp_path: Path
) -> None:
    # A GAN sampling job draws its grid, then the interpolation strip (the newer image).
    sampled = finished_job(
        settings,
        "sample",
        {},
        {"samples/grid.png": b"\x89PNG grid", "samples/interpolation.png": b"\x89PNG strip"},
    )
    target = tmp_path / "got.png"
    out = ok(gentrain(api_url, "download", sampled[:6], "-o", str(target)))
    assert target.read_bytes() == b"\x89PNG grid" and f"saved {target}" in out
    # A training job: its final grid, not the newest epoch grid.
    trained = finished_job(
        settings,
        "classifier",
        {},
        {"samples/predictions.png": b"\x89PNG final", "samples/epoch-000003.png": b"\x89PNG e3"},
    )
    ok(gentrain(api_url, "download", trained, "-o", str(target)))
    assert target.read_bytes() == b"\x89PNG final"
    ok(gentrain(api_url, "download", trained, "samples/epoch-000003.png", "-o", str(target)))
    assert target.read_bytes() == b"\x89PNG e3"
    empty = finished_job(settings, "autoencoder", {}, {})
    assert "has no sample grid yet" in one_line_error(gentrain(api_url, "download", empty))


def test_errors_are_one_line(api_url: str, settings: Settings, mnist_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for args in (("status",), ("datasets", "list"), ("logs", "0" * 32), ("wait", "0" * 32)):
        line = one_line_error(gentrain(closed, *args))
        assert f"not reachable at {closed}" in line and "start it with `gentrain up`" in line
    debug = CliRunner().invoke(cli, ["--debug", "status", "--api-url", closed])
    assert debug.exit_code == 1 and "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("Error: the gentrain API is not")

    missing = one_line_error(gentrain(api_url, "status", "0" * 32))
    assert "404 not_found" in missing and "0" * 32 in missing
    ok(gentrain(api_url, "datasets", "upload", str(mnist_path), "--name", "mnist"))
    invalid = one_line_error(
        gentrain(api_url, "submit", "autoencoder", "--dataset", "mnist", "-p", "epochs=0")
    )
    assert invalid.startswith("Error: 422 ") and "(field: params.epochs)" in invalid
    done = finished_job(settings, "autoencoder", {}, {})
    conflict = one_line_error(gentrain(api_url, "cancel", done))
    assert conflict.startswith("Error: 409 ")

    secured = serve(settings.model_copy(update={"auth": "required"}))
    try:
        denied = one_line_error(gentrain(next(secured), "status"))
    finally:
        next(secured, None)
    assert denied.startswith("Error: 401 ") and "GENTRAIN_API_KEY" in denied


def test_short_job_ids(api_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed, real = iter(uuid.UUID(f"c0ffee0{n}" + "0" * 23 + str(n)) for n in (1, 2)), uuid.uuid4
    monkeypatch.setattr(uuid, "uuid4", lambda: next(fixed, None) or real())
    first = create_test_job(settings.database_url)
    second = create_test_job(settings.database_url)
    monkeypatch.undo()
    assert (first[:8], second[:8]) == ("c0ffee01", "c0ffee02")

    assert ok(gentrain(api_url, "status", "c0ffee01")).startswith(f"job       {first}\n")
    assert json.loads(ok(gentrain(api_url, "status", "C0FFEE02", "-o", "json")))["id"] == second
    ambiguous = one_line_error(gentrain(api_url, "status", "c0ffee"))
    assert "ambiguous" in ambiguous and first in ambiguous and second in ambiguous
    assert "too short" in one_line_error(gentrain(api_url, "cancel", "c0ffe"))
    assert "no job id starts with 'abcdef'" in one_line_error(gentrain(api_url, "cancel", "abcdef"))
    assert "is not a job id" in one_line_error(gentrain(api_url, "status", "c0ffee-01"))
    out = ok(gentrain(api_url, "cancel", "c0ffee02"))
    assert out.strip() == f"{second} cancelled"

    def complete(*words: str) -> list[str]:
        env = {
            "_GENTRAIN_COMPLETE": "bash_complete",
            "COMP_WORDS": " ".join(["gentrain", *words]),
            "COMP_CWORD": str(len(words)),
        }
        return ok(CliRunner().invoke(cli, [], prog_name="gentrain", env=env)).split()

    offered = complete("status", "--api-url", api_url, "c0f")
    assert sorted(offered) == ["plain,c0ffee01", "plain,c0ffee02"]
    assert complete("logs", "--api-url", api_url, "c0ffee01") == ["plain,c0ffee01"]
    closed = f"http://127.0.0.1:{free_port()}"
    assert complete("status", "--api-url", closed, "c0f") == []  # no API: nothing to offer


def test_shell_completion_script() -> None:
    result = CliRunner().invoke(
        cli, [], prog_name="gentrain", env={"_GENTRAIN_COMPLETE": "bash_source"}
    )
    assert result.exit_code == 0 and "_gentrain_completion" in result.output


def test_metrics_and_keys_tables(
    api_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.cli import admin_commands
    from shared.api_keys import create_key
    from shared.jobs import record_epoch

    job_id = create_test_job(settings.database_url)
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id)
        assert job is not None and job.lease is not None
        for step, loss in ((1, 0.25), (2, None)):  # a loss that was not finite is null
            record_epoch(
                session, job_id, job.lease, step=step, values={"loss": loss, "mse": 0.5},
                seconds=1.5, progress=step / 2, eta_seconds=None,
            )  # fmt: skip
    rows = table_rows(ok(gentrain(api_url, "metrics", job_id[:6])))
    assert rows == [["STEP", "LOSS", "MSE", "SECONDS"], ["1", "0.25", "0.5", "1.5"]] + [
        ["2", "null", "0.5", "1.5"]
    ]
    as_json = json.loads(ok(gentrain(api_url, "metrics", job_id, "-o", "json")))
    assert [row["values"]["loss"] for row in as_json] == [0.25, None]

    monkeypatch.setattr(admin_commands, "current_settings", lambda: settings)
    row, _secret = create_key(settings.database_url, "alice", True)
    header, line = table_rows(ok(CliRunner().invoke(cli, ["keys", "list"])))
    assert header == ["ID", "PREFIX", "OWNER", "ADMIN", "STATE", "CREATED"]
    assert line[:5] == [str(row.id), f"{row.prefix}…", "alice", "yes", "active"]
    [listed] = json.loads(ok(CliRunner().invoke(cli, ["keys", "list", "-o", "json"])))
    assert listed["owner"] == "alice" and listed["admin"] is True and listed["state"] == "active"
