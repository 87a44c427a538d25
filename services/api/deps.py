"""Request helpers shared by the blueprints: settings, sessions, storage, queue, JSON bodies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from celery import Celery
from flask import current_app, request
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from services.api.errors import ApiError
from shared.db.session import read_connection, session_scope
from shared.settings import Settings
from shared.storage import ObjectStore


def settings() -> Settings:
    """The app's settings."""
    return cast(Settings, current_app.extensions["gentrain.settings"])


def store() -> ObjectStore:
    """The app's object store."""
    return cast(ObjectStore, current_app.extensions["gentrain.store"])


def celery() -> Celery:
    """The Celery app used to enqueue jobs by task name."""
    return cast(Celery, current_app.extensions["gentrain.celery"])


@contextmanager
def db() -> Iterator[Session]:
    """A database session for this request's writes; commits on success."""
    with session_scope(settings().database_url) as session:
        yield session


@contextmanager
def db_read() -> Iterator[Connection]:
    """A database connection for this request's reads (autocommit, no ORM)."""
    with read_connection(settings().database_url) as connection:
        yield connection


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 naming what is wrong with it."""
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "send a JSON body with Content-Type: application/json"
        )
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "malformed_json", "request body is not valid JSON")
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_json", "request body must be a JSON object")
    return body


def query_int(name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within bounds, or a 422 naming it."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, "invalid_parameter", f"{name} must be an integer", name) from None
    if not low <= value <= high:
        raise ApiError(422, "invalid_parameter", f"{name} must be between {low} and {high}", name)
    return value
