"""The ``gentrain`` command: one group gathering the process, admin and client commands."""

from __future__ import annotations

import click

from services.cli import (
    admin_commands,
    client_commands,
    kind_commands,
    log_command,
    process_commands,
    prometheus_command,
    removal_commands,
    sweep_commands,
    tensorboard_command,
    watch_commands,
)
from services.cli.common import GentrainGroup


@click.group(cls=GentrainGroup)
@click.option(
    "--debug",
    is_flag=True,
    envvar="GENTRAIN_DEBUG",
    help="print the traceback of an error, not only its one line",
)
def cli(debug: bool) -> None:
    """gentrain: train generative image models through a job queue.

    Job ids may be shortened to a unique prefix of at least 6 characters. Shell completion:
    eval "$(_GENTRAIN_COMPLETE=bash_source gentrain)" (zsh_source, fish_source for those)."""


for _command in (
    *process_commands.COMMANDS,
    *admin_commands.COMMANDS,
    *client_commands.COMMANDS,
    *kind_commands.COMMANDS,
    *watch_commands.COMMANDS,
    *prometheus_command.COMMANDS,
    *removal_commands.COMMANDS,
    *sweep_commands.COMMANDS,
    tensorboard_command.tensorboard,
    log_command.logs,
):
    cli.add_command(_command)
# ``datasets`` mixes an HTTP client's upload/list with the operator's direct fetch-mnist.
client_commands.datasets.add_command(admin_commands.datasets_fetch_mnist)
client_commands.datasets.add_command(removal_commands.datasets_delete)


if __name__ == "__main__":
    cli()
