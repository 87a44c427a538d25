"""The dashboard's Delete buttons (issue 13): on an ended job's page and a dataset's page, posted
with the session's CSRF token; refused (409) while the job runs or a job uses the dataset."""

from __future__ import annotations

from flask.testing import FlaskClient

from shared.api_keys import create_key
from shared.settings import Settings
from shared.storage import job_prefix, open_store
from tests.services.api.test_removal_api import run
from tests.services.ui.test_job_pages import page
from tests.services.ui.test_new_job_page import tiny_npz, upload
from tests.services.ui.test_signin import csrf_of, sign_in


def submit(client: FlaskClient, headers: dict[str, str] | None = None) -> str:
    body = {"kind": "autoencoder", "dataset": "digits", "params": {"epochs": 1}}
    response = client.post("/v1/jobs", json=body, headers=headers or {})
    assert response.status_code == 202, response.json
    return str(response.json["id"])


def test_delete_buttons_keyless(settings: Settings) -> None:
    from services.api import create_app

    client = create_app(settings).test_client()
    store = open_store(settings)
    upload(client, "digits", tiny_npz(30))
    ended, queued = submit(client), submit(client)
    run(settings, store, ended, ("model.keras", "samples/reconstructions.png"))

    html = page(client, f"/ui/jobs/{ended}")
    assert f'action="/ui/jobs/{ended}/delete"' in html and 'id="delete-button"' in html
    assert 'id="delete-job"' not in page(client, f"/ui/jobs/{queued}")  # not while queued
    refused = client.post(f"/ui/jobs/{queued}/delete")
    assert refused.status_code == 409 and "cancel it first" in refused.get_data(as_text=True)

    html = page(client, "/ui/datasets/digits")
    assert 'action="/ui/datasets/digits/delete"' in html
    refused = client.post("/ui/datasets/digits/delete")
    assert refused.status_code == 409 and queued in refused.get_data(as_text=True)

    done = client.post(f"/ui/jobs/{ended}/delete")
    assert done.status_code == 303 and done.headers["Location"].endswith("/ui/")
    assert client.get(f"/v1/jobs/{ended}").status_code == 404
    assert store.list_keys(job_prefix(ended)) == []
    assert client.post(f"/ui/jobs/{ended}/delete").status_code == 404

    client.post(f"/v1/jobs/{queued}/cancel")
    done = client.post("/ui/datasets/digits/delete")
    assert done.status_code == 303 and done.headers["Location"].endswith("/ui/datasets")
    assert "No datasets yet" in page(client, "/ui/datasets")


def test_delete_needs_the_csrf_token_and_is_the_owners_alone(settings: Settings) -> None:
    from services.api import create_app

    keyed = settings.model_copy(update={"auth": "required"})
    client, other = create_app(keyed).test_client(), create_app(keyed).test_client()
    _, alice = create_key(keyed.database_url, "alice")
    _, bob = create_key(keyed.database_url, "bob")
    as_alice = {"Authorization": f"Bearer {alice}"}
    upload(client, "digits", tiny_npz(30), as_alice)
    job_id = submit(client, as_alice)
    client.post(f"/v1/jobs/{job_id}/cancel", headers=as_alice)

    assert sign_in(client, alice).status_code == 303
    assert sign_in(other, bob).status_code == 303
    forged = client.post(f"/ui/jobs/{job_id}/delete", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert client.post("/ui/datasets/digits/delete").status_code == 403
    bobs = other.post(f"/ui/jobs/{job_id}/delete", data={"csrf_token": csrf_of(other)})
    assert bobs.status_code == 404
    token = csrf_of(client)
    assert 'id="delete-job"' in page(client, f"/ui/jobs/{job_id}")
    done = client.post(f"/ui/jobs/{job_id}/delete", data={"csrf_token": token})
    assert done.status_code == 303
    done = client.post("/ui/datasets/digits/delete", data={"csrf_token": token})
    assert done.status_code == 303
    assert client.get("/v1/datasets", headers=as_alice).json["items"] == []


def test_the_datasets_page_shows_storage_against_the_quota(settings: Settings) -> None:
    from services.api import create_app

    quota = settings.model_copy(update={"owner_quota_bytes": 10 * 1024 * 1024})
    client = create_app(quota).test_client()
    data = tiny_npz(30)
    upload(client, "digits", data)
    html = page(client, "/ui/datasets")
    usage = html[html.index('id="storage-usage"') :]
    usage = usage[: usage.index("</p>")]
    assert "of your 10.0 MB quota" in usage
    assert f"datasets {len(data) / 1024:.1f} KB" in usage and "job files 0 B" in usage
