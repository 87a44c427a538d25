"""What every group of ``gentrain`` commands shares: settings, embedded-mode migrations, and the
one place errors become a single line on stderr."""

from __future__ import annotations

import traceback
from typing import Any

import click
import requests

from services.cli.client import ApiClientError
from shared.settings import Settings, get_settings

# What a 401 adds to the API's message: where a key comes from.
KEY_HINT = "set GENTRAIN_API_KEY to a key from `gentrain keys create OWNER`"


def current_settings() -> Settings:
    """The settings from the environment (cached; ``--host``/``--port`` clear the cache)."""
    return get_settings()


def migrate_if_embedded(settings: Settings) -> None:
    """Apply migrations when running on the embedded default (SQLite), which has no setup step."""
    if settings.is_embedded:
        from shared.db.migrate import upgrade

        upgrade(settings.database_url)


def error_line(error: Exception) -> str:
    """What a person reads of an error the commands did not turn into words themselves."""
    if isinstance(error, ApiClientError):
        return f"{error} ({KEY_HINT})" if error.status == 401 else str(error)
    if isinstance(error, requests.RequestException):
        return f"request failed: {type(error).__name__}"
    first = f"{type(error).__name__}: {error}".splitlines()[0]
    return f"{first} (--debug shows the traceback)"


class GentrainGroup(click.Group):
    """The root group: any error from any command (an API answer, an unreachable API, a bug) is
    one line on stderr and exit code 1; ``--debug`` prints the traceback before it."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, turning what it raises into a ClickException (click prints it)."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            if ctx.params.get("debug"):
                traceback.print_exc()
            raise
        except Exception as error:
            if ctx.params.get("debug"):
                traceback.print_exc()
            raise click.ClickException(error_line(error)) from error
