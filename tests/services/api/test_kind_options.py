"""An option added to a kind's definition alone is validated, stored and documented by the API.

The option exists only in this test: a subclass of the kind's parameter model registered in
``KIND_SPECS`` with monkeypatch. Nothing else (routes, OpenAPI module) is touched.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Literal

import pytest
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from pydantic import Field, model_validator

from shared.kinds import KIND_SPECS, AutoencoderParams, RuleError


class WarmupAutoencoderParams(AutoencoderParams):
    """Parameters of an autoencoder job, with a learning-rate warm-up to try."""

    warmup: Literal["none", "linear", "cosine"] = Field("none", description="throw-away option")
    warmup_epochs: int | None = Field(None, ge=1, le=100, description="null: a tenth of epochs")
    milestones: list[int] = Field([], description="epochs at which to halve the learning rate")

    @model_validator(mode="after")
    def _warmup_fits(self) -> WarmupAutoencoderParams:
        if self.warmup_epochs is not None and self.warmup_epochs > self.epochs:
            raise RuleError("warmup_epochs", "warmup_epochs must not exceed epochs")
        return self


@pytest.fixture
def extended(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(KIND_SPECS["autoencoder"], params=WarmupAutoencoderParams)
    monkeypatch.setitem(KIND_SPECS, "autoencoder", spec)


@pytest.fixture
def dataset(client: FlaskClient, mnist_path: Path) -> str:
    response = client.post(
        "/v1/datasets",
        data={"file": (io.BytesIO(mnist_path.read_bytes()), "mnist.npz"), "name": "mnist"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201
    return "mnist"


def submit(client: FlaskClient, params: dict[str, object]) -> tuple[int, dict[str, object]]:
    response = client.post(
        "/v1/jobs", json={"kind": "autoencoder", "dataset": "mnist", "params": params}
    )
    return response.status_code, response.json or {}


BAD_VALUES = [
    ({"warmup": "cubic"}, "params.warmup", "must be one of 'none', 'linear' or 'cosine'"),
    ({"warmup": 1}, "params.warmup", "must be one of"),
    ({"warmup_epochs": 0}, "params.warmup_epochs", "at least 1"),
    ({"warmup_epochs": 1.5}, "params.warmup_epochs", "must be an integer"),
    ({"milestones": [3, "x"]}, "params.milestones", "params.milestones[1] must be an integer"),
    ({"milestones": 3}, "params.milestones", "must be a list"),
    ({"epochs": 5, "warmup_epochs": 6}, "params.warmup_epochs", "must not exceed epochs"),
]


def test_a_bad_value_of_the_new_option_is_a_422_naming_it(
    client: FlaskClient, dataset: str, extended: None
) -> None:
    # One service for every case: each is a separate request, and a dataset upload is slow.
    for params, field, message in BAD_VALUES:
        status, body = submit(client, params)
        assert status == 422, (params, body)
        error = body["error"]
        assert isinstance(error, dict)
        assert error["field"] == field and message in error["message"], (params, error)
    assert client.get("/v1/jobs").json["total"] == 0  # none was stored


def test_a_good_value_of_the_new_option_is_stored(
    client: FlaskClient, dataset: str, extended: None
) -> None:
    status, body = submit(client, {"warmup": "linear", "warmup_epochs": 3, "milestones": [10]})
    assert status == 202, body
    stored = client.get(f"/v1/jobs/{body['id']}").json["params"]
    assert stored["warmup"] == "linear" and stored["warmup_epochs"] == 3
    assert stored["milestones"] == [10] and stored["epochs"] == 50
    status, body = submit(client, {})
    assert status == 202, body
    defaults = client.get(f"/v1/jobs/{body['id']}").json["params"]
    assert (defaults["warmup"], defaults["warmup_epochs"], defaults["milestones"]) == (
        "none",
        None,
        [],
    )


def test_the_new_option_is_documented(client: FlaskClient, extended: None) -> None:
    document = client.get("/v1/openapi.json").json
    validate(document)
    schema = document["components"]["schemas"]["AutoencoderParams"]
    assert schema["description"].startswith("Parameters of an autoencoder job, with a")
    properties = schema["properties"]
    assert properties["warmup"] == {
        "default": "none",
        "description": "throw-away option",
        "enum": ["none", "linear", "cosine"],
        "type": "string",
    }
    nullable = properties["warmup_epochs"]
    assert nullable["default"] is None
    assert {"type": "integer", "minimum": 1, "maximum": 100} in nullable["anyOf"]
    assert {"type": "null"} in nullable["anyOf"]
    assert properties["milestones"]["type"] == "array"
    assert properties["milestones"]["items"] == {"type": "integer"}
    # Other kinds are as they were.
    assert "warmup" not in document["components"]["schemas"]["DenoiserParams"]["properties"]


def test_without_the_option_it_is_unknown(client: FlaskClient, dataset: str) -> None:
    status, body = submit(client, {"warmup": "linear"})
    assert status == 422 and body["error"]["field"] == "params.warmup"  # type: ignore[index]
    document = client.get("/v1/openapi.json").json
    assert "warmup" not in document["components"]["schemas"]["AutoencoderParams"]["properties"]
