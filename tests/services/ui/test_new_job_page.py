"""The new-job page on the server (Flask's client), on SQLite and on PostgreSQL with Redis and S3:
its fields are the kinds' parameter definitions (defaults, bounds, types, help), the values it
would post are what the API accepts, the fields the API names in its errors are on the form,
``?from=`` prefills a job's kind, dataset and parameters, and another owner's job is not found."""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser
from typing import Any, Literal, get_args, get_origin

import numpy as np
from annotated_types import Ge, Le
from flask.testing import FlaskClient

from services.api import create_app
from shared.api_keys import create_key
from shared.job_specs import validate_training_spec
from shared.kinds import KIND_SPECS
from shared.settings import Settings
from tests.services.ui.test_job_pages import embedded, page


class Elements(HTMLParser):
    """Every element's attributes by id, and the ``data-field`` names, of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.fields: list[str] = []
        self.options: dict[str, list[dict[str, str | None]]] = {}
        self._select: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        found["tag"] = tag
        if found.get("id"):
            self.by_id[str(found["id"])] = found
        if found.get("data-field"):
            self.fields.append(str(found["data-field"]))
        if tag == "select":
            self._select = found.get("id")
        elif tag == "option" and self._select:
            self.options.setdefault(self._select, []).append(found)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def tiny_npz(images: int = 12, labels: bool = True) -> bytes:
    """A small valid dataset: distinct 28×28 uint8 images (and digit labels)."""
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (images, 28, 28), dtype=np.uint8)}
    if labels:
        arrays["y_train"] = (np.arange(images) % 10).astype(np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def upload(
    client: FlaskClient, name: str, data: bytes, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = client.post(
        "/v1/datasets",
        data={"file": (io.BytesIO(data), f"{name}.npz"), "name": name},
        headers=headers or {},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def typed(field: dict[str, str | None]) -> Any:
    """A field's value as the page's script types it (static/new_job.js)."""
    kind, value = field["data-type"], field.get("value") or ""
    if kind == "boolean":
        return "checked" in field
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    return value


def form_params(elements: Elements, kind: str) -> dict[str, Any]:
    prefix = f"param-{kind}-"
    return {
        str(attrs["data-param"]): chosen(elements, element_id)
        if attrs["data-type"] == "choice"
        else typed(attrs)
        for element_id, attrs in elements.by_id.items()
        if element_id.startswith(prefix) and attrs.get("data-param")
    }


def chosen(elements: Elements, select_id: str) -> Any:
    """A choice's value as the page's script reads it: the selected option's data-choice."""
    options = elements.options[select_id]
    picked = [option for option in options if "selected" in option] or options[:1]
    return json.loads(str(picked[0]["data-choice"]))


def bounds(kind: str, name: str) -> tuple[Any, Any]:
    info = KIND_SPECS[kind].params.model_fields[name]
    low = next((m.ge for m in info.metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in info.metadata if isinstance(m, Le)), None)
    return low, high


def test_the_form_is_the_kinds_parameter_definitions(settings: Settings) -> None:
    client = create_app(settings).test_client()
    elements = Elements(page(client, "/ui/new"))
    kinds = [option["value"] for option in elements.options["kind"]]
    assert kinds == list(KIND_SPECS)
    for kind, spec in KIND_SPECS.items():
        fieldset = elements.by_id[f"params-{kind}"]
        assert fieldset["data-kind"] == kind
        assert ("hidden" in fieldset) == (kind != "autoencoder")  # the default kind is shown
        for name, info in spec.params.model_fields.items():
            field = elements.by_id[f"param-{kind}-{name}"]
            assert field["name"] == f"params.{name}"
            help_text = elements.by_id[f"param-{kind}-{name}-help"]
            assert help_text["tag"] == "span" and info.description
            if info.annotation is bool:
                assert field["type"] == "checkbox" and field["data-type"] == "boolean"
                assert ("checked" in field) == info.default
                continue
            if get_origin(info.annotation) is Literal:  # a choice: a select of its values
                assert field["tag"] == "select" and field["data-type"] == "choice"
                values = [json.loads(str(o["data-choice"])) for o in elements.options[field["id"]]]
                assert values == list(get_args(info.annotation))
                assert chosen(elements, str(field["id"])) == info.default
                continue
            expected_type = "integer" if info.annotation is int else "number"
            assert field["type"] == "number" and field["data-type"] == expected_type
            low, high = bounds(kind, name)
            if name == "max_runtime_seconds":
                high = min(high, settings.max_runtime_cap_seconds)
            assert float(str(field["min"])) == low and float(str(field["max"])) == high
            assert float(str(field["value"])) == info.default
        # What the form posts as it stands is what the API would fill in by itself.
        posted = form_params(elements, kind)
        assert set(posted) == set(spec.params.model_fields)
        assert validate_training_spec(kind, posted) == validate_training_spec(kind, {})
    # Each help line says the default and the bounds.
    page_html = page(client, "/ui/new")
    assert 'passes over the training split. <span class="bounds">1 to 1000; default 50' in (
        page_html
    )
    assert embedded(page_html, "new-job-data")["job_url"] == "/ui/jobs/JOB_ID"


def test_the_fields_the_api_names_are_on_the_form(settings: Settings) -> None:
    client = create_app(settings).test_client()
    upload(client, "digits", tiny_npz())
    fields = Elements(page(client, "/ui/new")).fields
    bad = {"kind": "autoencoder", "dataset": "digits", "params": {"epochs": -1}}
    error = client.post("/v1/jobs", json=bad).get_json()["error"]
    assert error["field"] == "params.epochs" and error["field"] in fields
    error = client.post("/v1/jobs", json={**bad, "params": {}, "dataset": "none"}).get_json()
    assert error["error"]["field"] == "dataset" and "dataset" in fields
    error = client.post("/v1/jobs", json={**bad, "kind": "flow"}).get_json()
    assert error["error"]["field"] == "kind" and "kind" in fields


def test_the_dataset_is_picked_from_the_callers_own(settings: Settings) -> None:
    client = create_app(settings).test_client()
    empty = Elements(page(client, "/ui/new"))
    assert [o["value"] for o in empty.options["dataset"]] == [""]
    upload(client, "older", tiny_npz(labels=False))
    upload(client, "newer", tiny_npz())
    html = page(client, "/ui/new")
    options = Elements(html).options["dataset"]
    assert [o["value"] for o in options] == ["", "newer", "older"]
    assert "selected" in options[1]  # the newest by default
    assert "older (12 images, no labels)" in html
    chosen = Elements(page(client, "/ui/new?dataset=older&kind=gan")).options
    assert "selected" in chosen["dataset"][2]
    assert [o["value"] for o in chosen["kind"] if "selected" in o] == ["gan"]


def test_run_again_prefills_kind_dataset_and_parameters(settings: Settings) -> None:
    client = create_app(settings).test_client()
    upload(client, "digits", tiny_npz())
    upload(client, "other", tiny_npz())
    params = {"epochs": 7, "learning_rate": 0.0125, "shuffle": False, "noise_factor": 0.3}
    body = {"kind": "denoiser", "dataset": "digits", "params": params}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["id"]
    html = page(client, f"/ui/new?from={job_id}")
    elements = Elements(html)
    assert [o["value"] for o in elements.options["kind"] if "selected" in o] == ["denoiser"]
    assert [o["value"] for o in elements.options["dataset"] if "selected" in o] == ["digits"]
    assert "hidden" not in elements.by_id["params-denoiser"]
    assert "hidden" in elements.by_id["params-autoencoder"]
    posted = form_params(elements, "denoiser")
    assert posted == validate_training_spec("denoiser", params)
    # Other kinds keep their defaults.
    assert form_params(elements, "autoencoder")["epochs"] == 50
    assert f'href="/ui/jobs/{job_id}"' in html and "Prefilled from job" in html


def test_another_owners_job_is_not_found(settings: Settings) -> None:
    keyed = settings.model_copy(update={"auth": "required"})
    url = keyed.database_url
    _, alice = create_key(url, "alice")
    _, bob = create_key(url, "bob")
    _, admin = create_key(url, "root", is_admin=True)
    client = create_app(keyed).test_client()
    as_bob = {"Authorization": f"Bearer {bob}"}
    upload(client, "bobs", tiny_npz(), as_bob)
    body = {"kind": "gan", "dataset": "bobs", "params": {"steps": 200, "latent_dim": 16}}
    response = client.post("/v1/jobs", json=body, headers=as_bob)
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["id"]
    as_alice = {"Authorization": f"Bearer {alice}"}
    html = page(client, f"/ui/new?from={job_id}", 404, as_alice)
    assert "Job not found" in html and "latent_dim" not in html
    page(client, "/ui/new?from=0123456789abcdef", 404, as_alice)
    # Alice is offered her own datasets, not Bob's.
    offered = Elements(page(client, "/ui/new", 200, as_alice)).options["dataset"]
    assert [o["value"] for o in offered] == [""]
    # An admin may run anyone's job again (as their own, on their own dataset of that name).
    as_admin = {"Authorization": f"Bearer {admin}"}
    elements = Elements(page(client, f"/ui/new?from={job_id}", 200, as_admin))
    assert form_params(elements, "gan")["latent_dim"] == 16
    assert form_params(elements, "gan")["steps"] == 200
