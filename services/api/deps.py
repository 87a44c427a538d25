"""Request helpers shared by the blueprints: settings, sessions, storage, queue, JSON bodies."""

from __future__ import annotations

import json
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


def _request_bytes(limit: int) -> bytes:
    """The request body, read up to ``limit`` bytes: a 413 past it, with or without a
    Content-Length (a chunked body is read, not ignored)."""
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    stream, chunks, size = request.stream, [], 0
    while True:
        chunk = stream.read(min(64 * 1024, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"a JSON body may be at most {limit} bytes")


def _depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests arrays and objects, counted up to ``limit`` + 1."""
    depth, level = 0, [value]
    while depth <= limit:
        containers = [item for item in level if isinstance(item, (dict, list))]
        if not containers:
            break
        depth += 1
        level = [
            child
            for item in containers
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return depth


def json_body(optional: bool = False) -> dict[str, Any]:
    """The request's JSON object, or a 4xx naming what is wrong with it: 413 over
    ``max_json_bytes`` (checked before parsing), 400 malformed or nested deeper than
    ``max_json_depth``, 415 not JSON. ``optional``: an empty body is ``{}``."""
    limits = settings()
    if optional and request.content_length == 0:
        return {}
    if not request.is_json and not optional:
        raise ApiError(
            415, "unsupported_media_type", "send a JSON body with Content-Type: application/json"
        )
    data = _request_bytes(limits.max_json_bytes)
    if optional and not data.strip():
        return {}
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "send a JSON body with Content-Type: application/json"
        )
    too_deep = f"request body nests deeper than {limits.max_json_depth} levels"
    try:
        body = json.loads(data)
    except ValueError:
        raise ApiError(400, "malformed_json", "request body is not valid JSON") from None
    except RecursionError:  # deeper than Python's recursion limit (about 1,000 levels)
        raise ApiError(400, "malformed_json", too_deep) from None
    if _depth(body, limits.max_json_depth) > limits.max_json_depth:
        raise ApiError(400, "malformed_json", too_deep)
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
