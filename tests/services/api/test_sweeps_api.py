"""Sweeps through the API on SQLite and on PostgreSQL with Redis and S3 (no worker: trials stay
queued): a sweep is accepted with its first `parallel` trials queued as ordinary jobs, listed,
shown with its trials' table, cancelled with its trials; a bad space or objective is a 422
naming the field; another owner's sweep is a 404."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from services.api import create_app
from shared.api_keys import create_key
from shared.settings import Settings
from tests.services.ui.test_new_job_page import upload

SPLITS = ("x_train", "x_test")
GRID: dict[str, Any] = {
    "kind": "autoencoder",
    "dataset": "digits",
    "params": {"epochs": 1, "max_train_images": 64},
    "space": {
        "learning_rate": {"values": [0.001, 0.01]},
        "batch_size": {"values": [32, 64]},
    },
    "sampler": "grid",
    "parallel": 2,
    "objective": {"metric": "test_mse"},
}


def tiny_npz() -> bytes:
    """A few random digits with a test split (trials report test_mse on it)."""
    rng = np.random.default_rng(0)
    images = {name: rng.integers(0, 256, (12, 28, 28), dtype=np.uint8) for name in SPLITS}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **images)  # type: ignore[arg-type]
    return buffer.getvalue()


@pytest.fixture
def client(settings: Settings) -> FlaskClient:
    client = create_app(settings).test_client()
    upload(client, "digits", tiny_npz())
    return client


def test_a_sweep_queues_parallel_trials_lists_shows_and_cancels(client: FlaskClient) -> None:
    response = client.post("/v1/sweeps", json=GRID)
    assert response.status_code == 202, response.get_data(as_text=True)
    sweep = response.get_json()
    assert response.headers["Location"] == f"/v1/sweeps/{sweep['id']}"
    assert (sweep["status"], sweep["trials"], sweep["parallel"]) == ("queued", 4, 2)
    assert sweep["objective"] == {"metric": "test_mse", "direction": "minimize"}
    table = sweep["trial_jobs"]
    assert len(table) == 2 and {row["status"] for row in table} == {"queued"}
    for row in table:
        job = client.get(f"/v1/jobs/{row['job_id']}").get_json()
        assert job["kind"] == "autoencoder" and job["params"]["epochs"] == 1
        assert job["sweep_id"] == sweep["id"]
        assert row["params"] == {k: job["params"][k] for k in ("learning_rate", "batch_size")}
    assert sweep["best"] is None and sweep["counts"]["queued"] == 2
    listed = client.get("/v1/sweeps").get_json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == sweep["id"]
    assert "trial_jobs" not in listed["items"][0]
    prefixed = client.get(f"/v1/sweeps?id_prefix={sweep['id'][:8]}").get_json()
    assert [item["id"] for item in prefixed["items"]] == [sweep["id"]]
    other = "0" * 8 if not sweep["id"].startswith("0" * 8) else "f" * 8
    assert client.get(f"/v1/sweeps?id_prefix={other}").get_json()["total"] == 0
    for bad in ("abc", "ABCDEF12", "xyz123"):
        answer = client.get(f"/v1/sweeps?id_prefix={bad}")
        assert answer.status_code == 422 and answer.get_json()["error"]["field"] == "id_prefix"
    cancelled = client.post(f"/v1/sweeps/{sweep['id']}/cancel")
    assert cancelled.status_code == 202
    shown = client.get(f"/v1/sweeps/{sweep['id']}").get_json()
    assert shown["status"] == "cancelled" and shown["cancelled_at"] is not None
    assert {row["status"] for row in shown["trial_jobs"]} == {"cancelled"}
    assert len(shown["trial_jobs"]) == 2  # none asked for after the cancel


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"space": {"dropout": {"low": 0.1, "high": 0.5}}}, "space.dropout"),
        ({"space": {"learning_rate": {"low": 1e-9, "high": 0.1}}}, "space.learning_rate.low"),
        ({"space": {"learning_rate": {"low": 1e-3, "high": 9.0}}}, "space.learning_rate.high"),
        ({"space": {"encoding_dim": {"low": 8, "high": 2.5}}}, "space.encoding_dim.high"),
        ({"space": {"epochs": {"values": [1, 2]}}}, "space.epochs"),  # fixed in params
        ({"space": {"batch_size": {"values": [64, 5000]}}}, "space.batch_size.values"),
        ({"objective": {"metric": "fid"}}, "objective.metric"),
        ({"objective": {"metric": "train_mse"}}, "objective.metric"),  # the dataset has x_test
        ({"sampler": "annealing"}, "sampler"),
        ({"trials": 9}, "trials"),
        ({"kind": "flow"}, "kind"),
        ({"dataset": "nope"}, "dataset"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_bad_sweep_is_a_422_naming_the_field(
    client: FlaskClient, change: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/sweeps", json={**GRID, **change})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["error"]["field"] == field
    assert client.get("/v1/jobs").get_json()["total"] == 0


GAN_SWEEP: dict[str, Any] = {
    "kind": "gan",
    "dataset": "digits",
    "params": {"steps": 4, "steps_per_epoch": 2, "quality_samples": 0},
    "space": {"learning_rate": {"values": [0.0002, 0.0004]}},
    "sampler": "grid",
    "objective": {"metric": "fid"},
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"params": {**GAN_SWEEP["params"], "conditional": True}}, "params.conditional"),
        (
            {"space": {**GAN_SWEEP["space"], "conditional": {"values": [False, True]}}},
            "space.conditional",
        ),
    ],
)
def test_a_conditional_sweep_on_a_dataset_without_labels_is_a_422(
    client: FlaskClient, change: dict[str, Any], field: str
) -> None:
    """Refused at submission, naming where labels are asked for, not when a trial runs."""
    response = client.post("/v1/sweeps", json={**GAN_SWEEP, **change})
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["field"] == field and "y_train" in error["message"]
    assert client.get("/v1/jobs").get_json()["total"] == 0
    # Without labels asked for, the same sweep is accepted.
    unconditional = {**GAN_SWEEP["space"], "conditional": {"values": [False]}}
    accepted = client.post("/v1/sweeps", json={**GAN_SWEEP, "space": unconditional})
    assert accepted.status_code == 202, accepted.get_data(as_text=True)


def test_another_owners_sweep_is_not_found(settings: Settings) -> None:
    keyed = settings.model_copy(update={"auth": "required"})
    _, alice = create_key(keyed.database_url, "alice")
    _, bob = create_key(keyed.database_url, "bob")
    client = create_app(keyed).test_client()
    as_alice, as_bob = ({"Authorization": f"Bearer {key}"} for key in (alice, bob))
    upload(client, "digits", tiny_npz(), as_alice)
    sweep = client.post("/v1/sweeps", json=GRID, headers=as_alice).get_json()
    for method, path in (("get", ""), ("post", "/cancel")):
        answer = getattr(client, method)(f"/v1/sweeps/{sweep['id']}{path}", headers=as_bob)
        assert answer.status_code == 404
    assert client.get("/v1/sweeps", headers=as_bob).get_json()["total"] == 0
    prefix = f"/v1/sweeps?id_prefix={sweep['id'][:8]}"
    assert client.get(prefix, headers=as_bob).get_json()["total"] == 0


def test_a_dataset_is_kept_while_a_sweep_on_it_has_not_ended(
    client: FlaskClient, settings: Settings
) -> None:
    from shared.db.session import session_scope
    from shared.job_state import JobStatus
    from shared.jobs import claim, finish
    from shared.sweeps.driver import drive_sweep

    sweep = client.post("/v1/sweeps", json=GRID).get_json()
    for row in sweep["trial_jobs"]:  # both trials end, before any driver asks for the next
        with session_scope(settings.database_url) as session:
            job = claim(session, row["job_id"], "w")
            assert job is not None
            finish(session, job.id, str(job.lease), JobStatus.SUCCEEDED, None, {"test_mse": 0.1})
    refused = client.delete("/v1/datasets/digits")
    assert refused.status_code == 409, refused.get_data(as_text=True)
    assert f"sweep {sweep['id']} has not ended" in refused.get_json()["error"]["message"]
    assert client.post(f"/v1/sweeps/{sweep['id']}/cancel").status_code == 202
    drive_sweep(settings.database_url, sweep["id"])  # the pass that sees it ended
    assert client.delete("/v1/datasets/digits").status_code == 200
    shown = client.get(f"/v1/sweeps/{sweep['id']}").get_json()
    assert shown["dataset"] is None and shown["status"] == "cancelled"
