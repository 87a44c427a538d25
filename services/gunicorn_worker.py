"""gunicorn's gevent worker with deadlines for slow clients and JSON for its own errors.

Loaded by the gunicorn master as ``services.gunicorn_worker.ApiWorker`` (``gentrain api``), so
this module stands outside ``services.api`` and imports nothing of the app (a test holds it to
that): psycopg chooses how it waits for PostgreSQL when it is first imported, which must be in
the worker, after gevent's patch and the choice in ``init_process``; and whatever the master
imports before the patch (redis, SQLAlchemy) would be unpatched in every worker it forks.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.util import find_spec
from typing import Any

import gevent
from gunicorn import http, util
from gunicorn.workers.ggevent import GeventWorker

# Settings are read from the environment here rather than through shared.settings, which the
# master would import before gevent patches anything.
_HEADER_TIMEOUT_ENV = "GENTRAIN_HEADER_TIMEOUT_SECONDS"
_IDLE_TIMEOUT_ENV = "GENTRAIN_CLIENT_IDLE_TIMEOUT_SECONDS"


def _seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answer (a malformed request line, oversized headers) as JSON."""
    code = reason.lower().replace(" ", "_") or "bad_request"
    body = json.dumps({"error": {"code": code, "message": mesg or reason, "field": None}})
    payload = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body.encode())}\r\n\r\n{body}"
    )
    util.write_nonblock(sock, payload.encode("latin-1", "replace"))


class ApiWorker(GeventWorker):  # type: ignore[misc]
    """A greenlet per connection, which must send its request line and headers within
    ``GENTRAIN_HEADER_TIMEOUT_SECONDS`` and never stall ``GENTRAIN_CLIENT_IDLE_TIMEOUT_SECONDS``.

    gunicorn's gevent worker puts no deadline on a first request's headers (only on keep-alive
    requests after it), so a client sending one byte a minute would keep its greenlet, and
    ``worker_connections`` such clients would fill the process.
    """

    def init_process(self) -> None:
        self.header_timeout = _seconds(_HEADER_TIMEOUT_ENV, 10.0)
        self.idle_timeout = _seconds(_IDLE_TIMEOUT_ENV, 30.0)
        # gunicorn answers a request it cannot parse itself, in HTML; ours is JSON like the app's.
        util.write_error = write_json_error
        if find_spec("psycopg_binary") or find_spec("psycopg_c"):
            # psycopg's C wait: a query blocks this process while PostgreSQL answers (as on sync
            # workers; slow clients still hold only their greenlet). Its cooperative wait under
            # gevent cost 0.2-0.3 ms of CPU a status read, a quarter of the reads
            # (docs/benchmarks.md); PSYCOPG_WAIT_FUNC=wait_poll chooses it all the same.
            os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_c")
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        waiting = sys.modules.get("psycopg.waiting")
        chosen = "PSYCOPG_WAIT_FUNC" in os.environ  # an operator's explicit choice
        if waiting is not None and not chosen and waiting.wait is getattr(waiting, "wait_c", None):
            # Imported before the patch: every query would block the whole process.
            raise RuntimeError("psycopg was imported before gevent patched the standard library")

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        client.setblocking(1)
        client.settimeout(self.idle_timeout)
        req = None
        try:
            parser = http.get_parser(self.cfg, client, addr)
            listener_name = listener.getsockname()
            deadline = self.header_timeout
            while self.alive:
                req = None
                with gevent.Timeout(deadline, False):
                    req = next(parser)
                if req is None:
                    break  # no complete request line and headers in time: drop the connection
                self.handle_request(listener_name, req, client, addr)
                if not self.cfg.keepalive:
                    break
                # The next request on a kept-alive connection: the keep-alive wait, at most.
                deadline = min(self.header_timeout, self.cfg.keepalive)
        except (StopIteration, http.errors.NoMoreData):
            pass
        except OSError:
            pass  # a client that stalled, reset or went away; nothing to answer
        except Exception as error:  # gunicorn's parse errors: answered by handle_error
            self.handle_error(req, client, addr, error)
        finally:
            util.close(client)
