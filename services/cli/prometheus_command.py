"""``gentrain prometheus``: the service's Prometheus metrics as the API exposes them."""

from __future__ import annotations

import click

from services.cli.client_commands import _call, _client, api_url_option


@click.command()
@click.option("--match", default="", help="only lines containing this text (and their help)")
@api_url_option
def prometheus(match: str, api_url: str | None) -> None:
    """Print GET /metrics: requests, jobs by status, queues, heartbeats, storage per owner."""
    text = _call(lambda: _client(api_url).prometheus_text())
    for line in text.splitlines():
        if not match or match in line:
            click.echo(line)


COMMANDS: tuple[click.Command, ...] = (prometheus,)
