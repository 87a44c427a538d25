"""`gentrain sweep submit|status|wait` against a real API served over HTTP on loopback (both
backends): a sweep submitted with -s ranges and value lists, its table, a 422 naming the field,
and `wait` following it to its end once its trials are written as a worker would."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, finish
from shared.settings import Settings
from shared.sweeps.driver import drive_sweep
from tests.services.test_cli_removal import api_url, gentrain

__all__ = ["api_url"]  # the fixture, used by name


def end_trials(url: str, sweep_id: str, trials: list[dict[str, object]], mse: float) -> None:
    """Run the sweep's queued trials to success as a worker would, then drive it on."""
    for row in trials:
        if row["status"] != "queued":
            continue
        with session_scope(url) as session:
            job = claim(session, str(row["job_id"]), "w")
            assert job is not None
            lease = str(job.lease)
        with session_scope(url) as session:
            finish(session, job.id, lease, JobStatus.SUCCEEDED, None, {"test_mse": mse})
        mse += 0.01
    drive_sweep(url, sweep_id)


def test_sweep_submit_status_and_wait(api_url: str, settings: Settings, mnist_path: Path) -> None:
    assert gentrain(api_url, "datasets", "upload", str(mnist_path), "--name", "mnist")[0] == 0
    submit = ("sweep", "submit", "autoencoder", "--dataset", "mnist", "-p", "epochs=1")
    code, out = gentrain(api_url, *submit, "-s", "learning_rate=0.0001:0.9", "--objective", "fid")
    assert code == 1 and "(field: objective.metric)" in out, out
    mse = ("--objective", "test_mse")
    code, out = gentrain(api_url, *submit, "-s", "learning_rate=0.0001:5", *mse)
    assert code == 1 and "(field: space.learning_rate.high)" in out, out
    code, out = gentrain(api_url, *submit, "-s", "learning_rate=0:0.01", *mse)
    assert code == 1 and "(field: space.learning_rate.low)" in out, out
    space = ("-s", "learning_rate=0.001,0.01", "-s", "encoding_dim=16,32", "--sampler", "grid")
    code, out = gentrain(api_url, *submit, *space, "--parallel", "2", "--objective", "test_mse")
    assert code == 0, out
    sweep_id = out.strip()
    code, out = gentrain(api_url, "sweep", "status", sweep_id, "-o", "json")
    sweep = json.loads(out)
    assert (sweep["trials"], sweep["parallel"], len(sweep["trial_jobs"])) == (4, 2, 2)
    code, text = gentrain(api_url, "sweep", "status", sweep_id)
    assert code == 0 and "LEARNING_RATE" in text and "ENCODING_DIM" in text, text
    code, listed = gentrain(api_url, "sweep", "status")
    assert code == 0 and sweep_id[:8] in listed and "0/4" not in listed
    url = settings.database_url
    end_trials(url, sweep_id, sweep["trial_jobs"], 0.05)
    sweep = json.loads(gentrain(api_url, "sweep", "status", sweep_id, "-o", "json")[1])
    end_trials(url, sweep_id, sweep["trial_jobs"], 0.02)
    code, out = gentrain(api_url, "sweep", "wait", sweep_id, "--timeout", "60", "--interval", "0.2")
    assert code == 0, out
    assert "succeeded" in out and "best      0.02 " in out, out
    assert re.search(r"^importance .*learning_rate=", out, re.M), out
    sweep = json.loads(gentrain(api_url, "sweep", "status", sweep_id, "-o", "json")[1])
    assert set(sweep["importances"]) == {"learning_rate", "encoding_dim"}
    assert abs(sum(sweep["importances"].values()) - 1) < 0.01


def test_sweep_cancel_and_short_ids(api_url: str, settings: Settings, mnist_path: Path) -> None:
    """A sweep is named by a prefix of its id in status, wait and cancel; cancel ends its queued
    trials; a prefix that names no sweep, or too short a one, is a clear error."""
    assert gentrain(api_url, "datasets", "upload", str(mnist_path), "--name", "mnist")[0] == 0
    submit = ("sweep", "submit", "autoencoder", "--dataset", "mnist", "-p", "epochs=1")
    space = ("-s", "learning_rate=0.001,0.01,0.1", "--sampler", "grid", "--parallel", "2")
    code, out = gentrain(api_url, *submit, *space, "--objective", "test_mse")
    assert code == 0, out
    sweep_id = out.strip()
    short = sweep_id[:8]
    code, out = gentrain(api_url, "sweep", "status", short, "-o", "json")
    assert code == 0 and json.loads(out)["id"] == sweep_id, out
    code, out = gentrain(api_url, "sweep", "status", sweep_id[:4])
    assert code == 1 and "too short" in out, out
    absent = "0" * 8 if not sweep_id.startswith("0" * 8) else "f" * 8
    code, out = gentrain(api_url, "sweep", "cancel", absent)
    assert code == 1 and f"no sweep id starts with {absent!r}" in out, out
    code, out = gentrain(api_url, "sweep", "cancel", short)
    assert code == 0 and out.startswith(f"{sweep_id} cancelled"), out
    sweep = json.loads(gentrain(api_url, "sweep", "status", short, "-o", "json")[1])
    assert sweep["status"] == "cancelled"
    assert {row["status"] for row in sweep["trial_jobs"]} == {"cancelled"}
    assert len(sweep["trial_jobs"]) == 2  # no trial was asked for after the cancel
    code, out = gentrain(api_url, "sweep", "wait", short, "--timeout", "10")
    assert code == 1 and "cancelled" in out, out
    code, out = gentrain(api_url, "sweep", "cancel", short)  # again: nothing more to do
    assert code == 0 and out.startswith(f"{sweep_id} cancelled"), out
