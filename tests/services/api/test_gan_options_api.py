"""The GAN's options at the API: each bad value a 422 naming it, a conditional GAN refused on a
dataset without labels, and a sampling job's digits checked against how the model was trained."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient

from shared.db.session import session_scope
from shared.job_state import JobStatus
from shared.jobs import claim, finish
from shared.settings import Settings


def upload(client: FlaskClient, data: bytes, name: str) -> str:
    response = client.post(
        "/v1/datasets",
        data={"file": (io.BytesIO(data), f"{name}.npz"), "name": name},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    return name


@pytest.fixture
def mnist(client: FlaskClient, mnist_path: Path) -> str:
    return upload(client, mnist_path.read_bytes(), "mnist")


@pytest.fixture
def unlabelled(client: FlaskClient) -> str:
    buffer = io.BytesIO()
    images = np.random.default_rng(0).integers(0, 256, (300, 28, 28), dtype=np.uint8)
    np.savez(buffer, x_train=images)
    return upload(client, buffer.getvalue(), "unlabelled")


def submit(client: FlaskClient, dataset: str, params: dict[str, object]):  # type: ignore[no-untyped-def]
    return client.post("/v1/jobs", json={"kind": "gan", "dataset": dataset, "params": params})


def succeeded(client: FlaskClient, settings: Settings, dataset: str, **params: object) -> str:
    response = submit(client, dataset, params)
    assert response.status_code == 202, response.json
    job_id: str = response.json["id"]
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id)
        assert job is not None and job.lease is not None
        finish(session, job_id, job.lease, JobStatus.SUCCEEDED)
    return job_id


BAD_OPTIONS = [
    ({"architecture": "resnet"}, "params.architecture", "must be one of 'seed' or 'dcgan'"),
    ({"loss": "wasserstein"}, "params.loss", "must be one of 'bce' or 'hinge'"),
    ({"conditional": 1}, "params.conditional", "must be true or false"),
    ({"loss": "hinge", "label_smoothing": 0.1}, "params.label_smoothing", "bce loss, not hinge"),
]


def test_each_bad_option_is_a_422_naming_it(client: FlaskClient, mnist: str) -> None:
    for params, field, message in BAD_OPTIONS:
        response = submit(client, mnist, params)
        assert response.status_code == 422, (params, response.json)
        error = response.json["error"]
        assert error["field"] == field and message in error["message"], (params, error)
    options = {"architecture": "dcgan", "loss": "hinge", "conditional": True}
    accepted = submit(client, mnist, options)
    assert accepted.status_code == 202, accepted.json
    stored = accepted.json["params"]
    assert {name: stored[name] for name in options} == options
    defaults = submit(client, mnist, {}).json["params"]
    assert (defaults["architecture"], defaults["loss"], defaults["conditional"]) == (
        "seed",
        "bce",
        False,
    )


def test_conditional_needs_a_dataset_with_labels(client: FlaskClient, unlabelled: str) -> None:
    response = submit(client, unlabelled, {"conditional": True, "quality_samples": 0})
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert error["field"] == "params.conditional"
    assert "y_train" in error["message"] and "unlabelled" in error["message"]
    # Without the option the same dataset is fine.
    assert submit(client, unlabelled, {"quality_samples": 0}).status_code == 202


def test_digits_are_for_conditional_models(
    client: FlaskClient, settings: Settings, mnist: str
) -> None:
    plain = succeeded(client, settings, mnist)
    conditional = succeeded(client, settings, mnist, conditional=True)

    def sample(job_id: str, params: dict[str, object]):  # type: ignore[no-untyped-def]
        return client.post(f"/v1/jobs/{job_id}/samples", json={"params": params})

    refused = sample(plain, {"digits": [7]})
    assert refused.status_code == 422, refused.json
    assert refused.json["error"]["field"] == "params.digits"
    assert "conditional" in refused.json["error"]["message"]
    assert sample(plain, {"count": 4}).json["params"] == {"count": 4, "seed": 0, "digits": None}

    accepted = sample(conditional, {"digits": [7, 3], "count": 20})
    assert accepted.status_code == 202, accepted.json
    assert accepted.json["params"]["digits"] == [7, 3]
    assert sample(conditional, {"digits": "all"}).json["params"]["digits"] == "all"
    for bad, field in (
        ({"digits": [10]}, "params.digits"),
        ({"digits": "some"}, "params.digits"),
        ({"digits": []}, "params.digits"),
        ({"digits": 7}, "params.digits"),
        ({"digits": "all", "count": 200}, "params.count"),
    ):
        response = sample(conditional, bad)
        assert response.status_code == 422, (bad, response.json)
        assert response.json["error"]["field"] == field, (bad, response.json)
    # An autoencoder's sampling job takes no digits.
    response = client.post(
        "/v1/jobs", json={"kind": "autoencoder", "dataset": mnist, "params": {"epochs": 1}}
    )
    job_id = response.json["id"]
    with session_scope(settings.database_url) as session:
        job = claim(session, job_id)
        assert job is not None and job.lease is not None
        finish(session, job_id, job.lease, JobStatus.SUCCEEDED)
    unknown = sample(job_id, {"digits": [1]})
    assert unknown.status_code == 422 and unknown.json["error"]["field"] == "params.digits"


def test_the_options_are_documented(client: FlaskClient) -> None:
    from openapi_spec_validator import validate

    document = client.get("/v1/openapi.json").json
    validate(document)
    schemas = document["components"]["schemas"]
    gan = schemas["GanParams"]["properties"]
    assert gan["architecture"]["enum"] == ["seed", "dcgan"]
    assert gan["loss"]["enum"] == ["bce", "hinge"]
    assert gan["conditional"]["type"] == "boolean" and gan["conditional"]["default"] is False
    digits = schemas["GanSampleParams"]["properties"]["digits"]
    assert {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}} in digits[
        "anyOf"
    ]
    request = schemas["SampleRequest"]["properties"]["params"]
    refs = [option["$ref"] for option in request["anyOf"]]
    assert refs == ["#/components/schemas/SampleParams", "#/components/schemas/GanSampleParams"]
