from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.api import create_app
from shared.settings import Settings


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    yield create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
