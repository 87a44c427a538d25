"""The API's gunicorn worker class loads in the master without the app: nothing that gevent must
patch first, or that psycopg must see patched, is imported before the workers fork."""

from __future__ import annotations

import subprocess
import sys

APP_MODULES = ("services.api", "shared", "redis", "sqlalchemy", "psycopg", "flask", "celery")


def test_the_worker_class_imports_nothing_of_the_app() -> None:
    probe = (
        "import sys, services.gunicorn_worker\n"
        f"print(','.join(m for m in {APP_MODULES!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
