"""API errors: one JSON shape ``{"error": {"code", "message", "field"}}`` for every failure."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from shared.log_format import request_id

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered with its HTTP status and a clear message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = headers or {}
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def not_found(what: str, ident: str) -> ApiError:
    """A 404 for a missing resource."""
    return ApiError(404, "not_found", f"{what} {ident!r} not found")


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    """The JSON error body with ``status``."""
    response = jsonify({"error": {"code": code, "message": message, "field": field}})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer every error, including Flask's own, in the JSON error shape."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        response = error_response(error.status, error.code, error.message, error.field)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="gentrain"'
        for name, value in error.headers.items():
            response.headers[name] = value
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        message = error.description or error.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"request body is larger than the limit of {limit} bytes"
        response = error_response(status, code, message)
        if status == 405 and error.get_response().headers.get("Allow"):
            response.headers["Allow"] = error.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        # The request id is the one the client got back: its report finds this traceback.
        rid = request_id.get() or "-"
        log.exception("unhandled error in %s %s (request %s)", request.method, request.path, rid)
        return error_response(500, "internal_error", "internal server error")
