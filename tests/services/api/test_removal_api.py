"""Deleting jobs and datasets, and the owner's storage quota, over HTTP (issue 13): real
database, broker and storage (the local directory, and S3 on moto's server)."""

import io
import threading
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Table, func, select

from services.api import create_app
from shared.api_keys import create_key
from shared.db.models import Base, Dataset, Job
from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, finish
from shared.settings import Settings
from shared.storage import ObjectStore, job_prefix, open_store
from workers.job_reporter import JobReporter


def upload(client: FlaskClient, data: bytes, name: str = "mnist", **headers: str) -> Any:
    return client.post(
        "/v1/datasets",
        data={"file": (io.BytesIO(data), "d.npz"), "name": name},
        content_type="multipart/form-data",
        headers=headers,
    )


def submit(client: FlaskClient, dataset: str = "mnist", **headers: str) -> Any:
    body = {"kind": "autoencoder", "dataset": dataset, "params": {"epochs": 1}}
    return client.post("/v1/jobs", json=body, headers=headers)


def run(
    settings: Settings,
    store: ObjectStore,
    job_id: str,
    names: tuple[str, ...] = ("model.keras",),
    status: JobStatus | None = JobStatus.SUCCEEDED,
) -> str:
    """Claim the job as a worker does, save ``names`` and (with ``status``) end it."""
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id, "w@test")
        assert job is not None
        lease, attempt = str(job.lease), job.attempts
    reporter = JobReporter(settings, store, job_id, lease, attempt)
    for name in names:
        reporter.save_bytes(name, b"x" * 100, "application/octet-stream")
    if status is not None:
        with session_scope(settings.database_url) as session:
            assert finish(session, job_id, lease, status, None, {}) is status
    return lease


def rows_naming(settings: Settings, job_ids: list[str]) -> dict[str, int]:
    """Rows in every table with a ``job_id`` column (and jobs by id or parent) naming the jobs."""
    found = {}
    with session_scope(settings.database_url) as session:
        for table in Base.metadata.sorted_tables:
            assert isinstance(table, Table)
            columns = [table.c[name] for name in ("job_id", "parent_id") if name in table.c]
            if table.name == "jobs":
                columns.append(table.c.id)
            for column in columns:
                count = session.scalar(
                    select(func.count()).select_from(table).where(column.in_(job_ids))
                )
                if count:
                    found[f"{table.name}.{column.name}"] = int(count or 0)
    return found


@pytest.fixture
def mnist(client: FlaskClient, mnist_path: Path) -> bytes:
    data = mnist_path.read_bytes()
    assert upload(client, data).status_code == 201
    return data


def test_deleting_an_ended_job_leaves_no_object_and_no_row(
    client: FlaskClient, settings: Settings, mnist: bytes
) -> None:
    store = open_store(settings)
    job_id = submit(client).json["id"]
    run(settings, store, job_id, ("model.keras", "checkpoints/latest.npz", "samples/a.png"))
    sample = client.post(f"/v1/jobs/{job_id}/samples", json={})
    assert sample.status_code == 202
    sample_id = sample.json["id"]
    run(settings, store, sample_id, ("samples/grid.png",))
    other = submit(client).json["id"]  # another job of the owner is untouched
    run(settings, store, other, ("model.keras",), JobStatus.FAILED)
    assert client.get(f"/v1/jobs/{job_id}/logs").status_code == 200
    assert rows_naming(settings, [job_id, sample_id])  # history, artifacts, …

    response = client.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.json
    assert response.json["deleted_jobs"] == [job_id, sample_id]
    assert store.list_keys(job_prefix(job_id)) == []
    assert store.list_keys(job_prefix(sample_id)) == []
    assert rows_naming(settings, [job_id, sample_id]) == {}
    for gone in (job_id, sample_id):
        assert client.get(f"/v1/jobs/{gone}").status_code == 404
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 404
    assert len(store.list_keys(job_prefix(other))) == 1
    assert client.get(f"/v1/jobs/{other}").json["artifact_count"] == 1


def test_deleting_a_job_that_has_not_ended_is_409(
    client: FlaskClient, settings: Settings, mnist: bytes
) -> None:
    store = open_store(settings)
    queued = submit(client).json["id"]
    response = client.delete(f"/v1/jobs/{queued}")
    assert response.status_code == 409
    assert response.json["error"]["code"] == "job_active"
    assert "queued" in response.json["error"]["message"]
    assert "cancel it first" in response.json["error"]["message"]

    running = submit(client).json["id"]
    run(settings, store, running, ("model.keras",), status=None)
    response = client.delete(f"/v1/jobs/{running}")
    assert response.status_code == 409 and "running" in response.json["error"]["message"]
    assert client.post(f"/v1/jobs/{running}/cancel").json["status"] == "cancelling"
    assert client.delete(f"/v1/jobs/{running}").status_code == 409
    assert len(store.list_keys(job_prefix(running))) == 1

    # A parent whose sampling job is queued keeps the model it needs.
    parent = submit(client).json["id"]
    run(settings, store, parent)
    child = client.post(f"/v1/jobs/{parent}/samples", json={}).json["id"]
    response = client.delete(f"/v1/jobs/{parent}")
    assert response.status_code == 409 and child in response.json["error"]["message"]
    assert client.post(f"/v1/jobs/{child}/cancel").json["status"] == "cancelled"
    assert client.delete(f"/v1/jobs/{parent}").status_code == 200


def test_owners_delete_only_their_own(settings: Settings, mnist_path: Path) -> None:
    secured = settings.model_copy(update={"auth": "required"})
    client = create_app(secured).test_client()
    _, alice = create_key(secured.database_url, "alice")
    _, bob = create_key(secured.database_url, "bob")
    _, admin = create_key(secured.database_url, "ops", is_admin=True)
    as_alice = {"Authorization": f"Bearer {alice}"}
    as_bob = {"Authorization": f"Bearer {bob}"}
    as_admin = {"Authorization": f"Bearer {admin}"}
    assert upload(client, mnist_path.read_bytes(), **as_alice).status_code == 201
    job_id = submit(client, **as_alice).json["id"]
    client.post(f"/v1/jobs/{job_id}/cancel", headers=as_alice)

    assert client.delete(f"/v1/jobs/{job_id}", headers=as_bob).status_code == 404
    assert client.delete("/v1/datasets/mnist", headers=as_bob).status_code == 404
    assert client.delete("/v1/datasets/mnist?owner=alice", headers=as_bob).status_code == 404
    assert client.get("/v1/usage?owner=alice", headers=as_bob).status_code == 404
    assert client.delete(f"/v1/jobs/{job_id}", headers=as_alice).status_code == 200
    response = client.delete("/v1/datasets/mnist?owner=alice", headers=as_admin)
    assert response.status_code == 200, response.json
    assert client.get("/v1/datasets", headers=as_alice).json["items"] == []


def test_deleting_a_dataset_in_use_is_409_and_ended_jobs_are_detached(
    client: FlaskClient, settings: Settings, mnist: bytes
) -> None:
    store = open_store(settings)
    ended = submit(client).json["id"]
    run(settings, store, ended)
    queued = submit(client).json["id"]
    response = client.delete("/v1/datasets/mnist")
    assert response.status_code == 409
    assert response.json["error"]["code"] == "dataset_in_use"
    assert queued in response.json["error"]["message"]

    client.post(f"/v1/jobs/{queued}/cancel")
    with session_scope(settings.database_url) as session:
        key = session.scalar(select(Dataset.storage_key).where(Dataset.name == "mnist"))
    assert key is not None and store.exists(key)
    response = client.delete("/v1/datasets/mnist")
    assert response.status_code == 200, response.json
    assert not store.exists(key)
    assert client.get("/v1/datasets/mnist").status_code == 404
    assert client.delete("/v1/datasets/mnist").status_code == 404
    view = client.get(f"/v1/jobs/{ended}").json  # the job keeps its record and artifacts
    assert view["dataset"] is None and view["artifact_count"] == 1
    assert submit(client).status_code == 422  # a new job needs a dataset that exists


def race(*calls: Any) -> list[Any]:
    """Run the calls at once (each on its own thread, released together); their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def runner(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_dataset_delete_racing_a_submission_never_leaves_a_job_without_its_dataset(
    settings: Settings, mnist_path: Path
) -> None:
    app = create_app(settings)
    data = mnist_path.read_bytes()
    outcomes = set()
    for round_ in range(8):
        name = f"d{round_}"
        assert upload(app.test_client(), data, name).status_code == 201
        deleted, submitted = race(
            lambda name=name: app.test_client().delete(f"/v1/datasets/{name}").status_code,
            lambda name=name: submit(app.test_client(), name).status_code,
        )
        outcomes.add((deleted, submitted))
        assert (deleted, submitted) in {(200, 422), (409, 202)}
    with session_scope(settings.database_url) as session:
        orphans = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.status == JobStatus.QUEUED.value, Job.dataset_id.is_(None))
        )
    assert orphans == 0


def test_a_job_delete_racing_a_sampling_request_never_leaves_a_sampler_without_its_model(
    settings: Settings, mnist_path: Path
) -> None:
    app = create_app(settings)
    store = open_store(settings)
    assert upload(app.test_client(), mnist_path.read_bytes()).status_code == 201
    for _ in range(6):
        parent = submit(app.test_client()).json["id"]
        run(settings, store, parent)
        deleted, sampled = race(
            lambda parent=parent: app.test_client().delete(f"/v1/jobs/{parent}").status_code,
            lambda parent=parent: (
                app.test_client().post(f"/v1/jobs/{parent}/samples", json={}).status_code
            ),
        )
        assert (deleted, sampled) in {(200, 404), (409, 202)}
        if sampled == 202:
            assert store.list_keys(job_prefix(parent)) != []


def test_quota_refuses_uploads_and_jobs_over_it_and_usage_shows_it(
    settings: Settings, mnist_path: Path
) -> None:
    data = mnist_path.read_bytes()
    quota = len(data) + 150  # one dataset and one 100-byte artifact fit; a second one does not
    tight = settings.model_copy(update={"owner_quota_bytes": quota})
    client = create_app(tight).test_client()
    store = open_store(tight)
    assert upload(client, data).status_code == 201
    usage = client.get("/v1/usage").json
    assert usage["datasets"]["bytes"] == len(data) and usage["total_bytes"] == len(data)
    assert usage["quota_bytes"] == quota

    response = upload(client, data, "again")
    assert response.status_code == 409
    assert response.json["error"]["code"] == "quota_exceeded"
    assert "GENTRAIN_OWNER_QUOTA_BYTES" in response.json["error"]["message"]
    assert f"{quota:,}" in response.json["error"]["message"]

    job_id = submit(client).json["id"]  # below the quota: accepted
    run(tight, store, job_id, ("model.keras", "samples/grid.png"))  # 200 bytes: now over
    usage = client.get("/v1/usage").json
    assert usage["artifacts"] == {"count": 2, "bytes": 200}
    assert usage["total_bytes"] == len(data) + 200
    response = submit(client)
    assert response.status_code == 409
    assert "GENTRAIN_OWNER_QUOTA_BYTES" in response.json["error"]["message"]
    assert client.post(f"/v1/jobs/{job_id}/samples", json={}).status_code == 409

    assert client.delete(f"/v1/jobs/{job_id}").status_code == 200  # deleting makes room
    assert client.get("/v1/usage").json["total_bytes"] == len(data)
    assert submit(client).status_code == 202


def test_sampling_an_expired_job_is_409(
    client: FlaskClient, settings: Settings, mnist: bytes
) -> None:
    from datetime import timedelta

    from shared.db.models import utcnow
    from shared.retention import retention_pass

    store = open_store(settings)
    job_id = submit(client).json["id"]
    run(settings, store, job_id)
    later = utcnow() + timedelta(days=31)
    retained = settings.model_copy(update={"retain_days": 30})
    assert retention_pass(retained, store, now=later).expired == [job_id]
    view = client.get(f"/v1/jobs/{job_id}").json
    assert view["expired"] is True and view["expired_at"] is not None
    assert view["artifacts"] == [] and view["status"] == "succeeded"
    response = client.post(f"/v1/jobs/{job_id}/samples", json={})
    assert response.status_code == 409 and "expired" in response.json["error"]["message"]
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 200


def test_objects_storage_kept_or_a_late_upload_wrote_are_removed_by_the_next_passes(
    settings: Settings, mnist_path: Path
) -> None:
    from datetime import timedelta

    from shared.db.models import ObjectRemoval, utcnow
    from shared.retention import retention_pass
    from shared.storage import job_key

    store = open_store(settings)
    # The API's storage is elsewhere (another bucket or directory): its removals find nothing
    # of the real objects, as when storage fails or is unreachable at the time of the delete.
    elsewhere = settings.model_copy(
        update={"data_dir": settings.data_dir.parent / "elsewhere", "s3_bucket": "gentrain-other"}
        if settings.uses_s3
        else {"data_dir": settings.data_dir.parent / "elsewhere"}
    )
    app = create_app(elsewhere.model_copy(update={"database_url": settings.database_url}))
    client = app.test_client()
    assert upload(client, mnist_path.read_bytes()).status_code == 201
    job_id = submit(client).json["id"]
    run(settings, store, job_id, ("model.keras", "samples/a.png"))
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
    assert len(store.list_keys(job_prefix(job_id))) == 2  # not removed yet
    # A worker frozen across the delete uploads one more object under the prefix.
    store.put_bytes(job_key(job_id, "attempt-1", "late.png"), b"late", "image/png")

    assert retention_pass(settings, store).removed == 0  # within the grace period: kept
    later = utcnow() + timedelta(seconds=settings.heartbeat_timeout_seconds + 1)
    assert retention_pass(settings, store, now=later).removed == 1
    assert store.list_keys(job_prefix(job_id)) == []
    with session_scope(settings.database_url) as session:
        assert session.scalar(select(func.count()).select_from(ObjectRemoval)) == 0
    assert retention_pass(settings, store, now=later).removed == 0


def test_the_quota_answers_are_documented(settings: Settings) -> None:
    from services.api.openapi import openapi_document

    operations = openapi_document(settings)["paths"]
    assert "409" in operations["/v1/jobs"]["post"]["responses"]
    assert "409" in operations["/v1/jobs/{job_id}/samples"]["post"]["responses"]
    assert "409" in operations["/v1/datasets"]["post"]["responses"]
