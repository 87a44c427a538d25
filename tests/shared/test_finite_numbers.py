"""Non-finite numbers never reach JSON: stored as null with the reason, answered as null."""

from __future__ import annotations

import json
import math

from sqlalchemy import select

from services.api import create_app
from shared.db.models import Job, Metric
from shared.db.session import session_scope
from shared.finite_numbers import finite_json, finite_record
from shared.job_state import JobStatus
from shared.jobs import claim, finish, record_epoch
from shared.settings import Settings
from tests.conftest import create_test_job


def strict(text: str) -> object:
    """Parse as a browser would: the bare tokens Infinity and NaN are errors."""

    def refuse(token: str) -> object:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_values_become_null_and_are_named() -> None:
    clean, replaced = finite_json({"a": math.inf, "b": [1.0, math.nan], "c": {"d": -math.inf}})
    assert clean == {"a": None, "b": [1.0, None], "c": {"d": None}}
    assert replaced == {"a": "inf", "b[1]": "nan", "c.d": "-inf"}
    assert finite_record({"test_mse": 0.0, "test_psnr_db": math.inf}) == {
        "test_mse": 0.0,
        "test_psnr_db": None,
        "non_finite": {"test_psnr_db": "inf"},
    }
    assert finite_record({"x": 1}) == {"x": 1}


def test_a_perfect_models_results_are_stored_and_answered_as_strict_json(
    settings: Settings,
) -> None:
    # PostgreSQL refuses Infinity in a JSON column: the job's end was never recorded before.
    url = settings.database_url
    job_id = create_test_job(url)
    with session_scope(url) as session:
        job = claim(session, job_id)
        assert job is not None and job.lease is not None
        lease = job.lease
    with session_scope(url) as session:
        values = {"loss": 0.0, "val_loss": math.nan}
        record_epoch(
            session, job_id, lease, step=1, values=values, seconds=1.0, progress=1.0,
            eta_seconds=0.0,
        )  # fmt: skip
    with session_scope(url) as session:
        results = {"test_mse": 0.0, "test_psnr_db": math.inf}
        assert finish(session, job_id, lease, JobStatus.SUCCEEDED, None, results) is not None
    with session_scope(url) as session:
        stored = session.get(Job, job_id)
        assert stored is not None and stored.status == "succeeded"
        assert stored.results["test_psnr_db"] is None
        assert stored.results["non_finite"] == {"test_psnr_db": "inf"}
        metric = session.scalar(select(Metric).where(Metric.job_id == job_id))
        assert metric is not None and metric.values == {"loss": 0.0, "val_loss": None}
    client = create_app(settings).test_client()
    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/metrics"):
        response = client.get(path)
        assert response.status_code == 200
        strict(response.get_data(as_text=True))


def test_the_api_never_writes_a_bare_infinity(settings: Settings) -> None:
    app = create_app(settings)
    with app.app_context():
        text = app.json.dumps({"x": math.inf, "y": [math.nan], "z": 1.5})
    assert strict(text) == {"x": None, "y": [None], "z": 1.5}


def test_the_openapi_document_allows_null_metric_values(settings: Settings) -> None:
    document = create_app(settings).test_client().get("/v1/openapi.json").json
    values = document["components"]["schemas"]["Metric"]["properties"]["values"]
    assert values["additionalProperties"]["type"] == ["number", "null"]
