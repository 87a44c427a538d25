"""The GAN's options in the dashboard: the new-job form offers them, and a conditional GAN's
page offers digits to draw (an unconditional one does not)."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.api import create_app
from services.ui.pages_job import draw_fields
from shared.settings import Settings
from tests.services.ui import written_jobs as w


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def html_of(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def test_the_new_job_form_offers_the_options(client: FlaskClient) -> None:
    html = html_of(client, "/ui/new?kind=gan")
    gan = html.split('data-kind="gan"', 1)[1].split("</fieldset>", 1)[0]
    for name in ("architecture", "loss"):
        assert re.search(rf'<select[^>]*data-param="{name}"[^>]*data-type="choice"', gan), name
    assert 'value="dcgan"' in gan or "dcgan" in gan
    assert re.search(r'data-param="conditional"[^>]*data-type="boolean"', gan)
    assert "conditional needs labels (y_train)" in html


def test_digits_are_offered_for_a_conditional_gan_only(
    client: FlaskClient, settings: Settings
) -> None:
    assert [f.name for f in draw_fields("gan", {"conditional": True})] == ["digits"]
    assert draw_fields("gan", {"conditional": True})[0].is_list
    assert draw_fields("gan", {}) == [] and draw_fields("autoencoder", {}) == []
    plain = w.finished_gan(settings.database_url, steps=200)
    assert 'data-param="digits"' not in html_of(client, f"/ui/jobs/{plain}")
    url = settings.database_url
    job_id = w.new_job(url, "gan", {"steps": 100, "steps_per_epoch": 100, "conditional": True})
    lease = w.start(url, job_id)
    w.end(url, job_id, lease, w.GAN_RESULTS)
    html = html_of(client, f"/ui/jobs/{job_id}")
    assert 'id="draw-form"' in html
    assert re.search(r'name="digits" data-param="digits" data-list', html)
