"""Request ids: every request gets one (a client's sane ``X-Request-ID``, else a fresh one),
every response carries it back, errors and event streams included, and every record logged
while the request is served names it (``shared.log_format``)."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

from shared.log_format import request_id

HEADER = "X-Request-ID"
# What a client may choose: short, and nothing that could forge a log line or a header.
_SANE = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")


def current_request_id() -> str:
    """The id of the request being served."""
    return str(getattr(g, "request_id", "") or "")


def _chosen() -> str:
    sent = request.headers.get(HEADER, "")
    return sent if _SANE.fullmatch(sent) else uuid.uuid4().hex


def register_request_ids(app: Flask) -> None:
    """Give every request an id (register before anything that may refuse a request)."""

    @app.before_request
    def _assign() -> None:
        g.request_id = _chosen()
        request_id.set(g.request_id)

    @app.after_request
    def _answer(response: Response) -> Response:
        if not getattr(g, "request_id", None):  # refused before _assign ran
            g.request_id = _chosen()
        response.headers[HEADER] = g.request_id
        return response

    @app.teardown_request
    def _forget(_error: BaseException | None) -> None:
        request_id.set(None)
