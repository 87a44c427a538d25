"""gunicorn's JSON logger (``GENTRAIN_LOG_FORMAT=json``) loads in the master without the app, as
the worker class does (``test_gunicorn_worker``): nothing gevent must patch first is imported."""

from __future__ import annotations

import subprocess
import sys

from tests.services.test_gunicorn_worker import APP_MODULES


def test_the_logger_class_imports_nothing_of_the_app() -> None:
    heavy = tuple(name for name in APP_MODULES if name != "shared") + ("shared.settings",)
    probe = (
        "import sys, services.gunicorn_logging\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
