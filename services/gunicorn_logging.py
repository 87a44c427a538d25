"""gunicorn's logger as JSON lines (``GENTRAIN_LOG_FORMAT=json``): its own messages and one
access line per request with the request's ``X-Request-ID``.

Loaded by the gunicorn master (``--logger-class``), so it imports nothing of the app, only the
standard-library formatter of ``shared.log_format``.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn import glogging

from shared.log_format import JsonFormatter

ROLE = "api"


class JsonLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's error and access logs as JSON lines; the app's own records go to the root
    logger, which ``services.api.wsgi`` gives the same format."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JsonFormatter(ROLE)
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(formatter)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        headers = {name.lower(): value for name, value in resp.headers}
        method, path = environ.get("REQUEST_METHOD", "-"), environ.get("RAW_URI", "-")
        fields = {
            "request_id": headers.get("x-request-id"),
            "method": method,
            "path": path,
            "status": int(status) if str(status).isdigit() else status,
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "bytes": getattr(resp, "sent", None),
        }
        try:
            self.access_log.log(logging.INFO, "%s %s %s", method, path, status, extra=fields)
        except Exception:  # noqa: BLE001 - as gunicorn's own access(): never fail a request
            self.exception("cannot log the access of a request")
