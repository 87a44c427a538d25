"""Operator commands that work on the database and storage directly: keys, db, fetch-mnist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from services.cli.common import current_settings, migrate_if_embedded
from services.cli.output import emit, output_option, table


@click.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.argument("owner")
@click.option("--admin", is_flag=True, help="the key sees every owner's jobs and datasets")
def keys_create(owner: str, admin: bool) -> None:
    """Create a key for OWNER; the secret is printed once and never stored."""
    from shared.api_keys import create_key

    settings = current_settings()
    migrate_if_embedded(settings)
    try:
        row, secret = create_key(settings.database_url, owner, admin)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"key {row.id} for {owner}{' (admin)' if admin else ''}; keep it, it is shown once:")
    click.echo(secret)


@keys.command("list")
@output_option
def keys_list(fmt: str) -> None:
    """List keys (prefixes only): id, prefix, owner, admin, state, created."""
    from shared.api_keys import list_keys

    keys = [
        {
            "id": row.id,
            "prefix": row.prefix,
            "owner": row.owner,
            "admin": row.is_admin,
            "state": "revoked" if row.revoked_at else "active",
            "created_at": row.created_at.isoformat(),
        }
        for row in list_keys(current_settings().database_url)
    ]
    emit(keys, fmt, _keys_table)


def _keys_table(keys: list[dict[str, Any]]) -> str:
    headers = ("id", "prefix", "owner", "admin", "state", "created")
    rows = [
        (k["id"], f"{k['prefix']}…", k["owner"], "yes" if k["admin"] else "no", k["state"])
        + (k["created_at"][:10],)
        for k in keys
    ]
    return table(headers, rows, flexible=(2,)) if rows else "no keys"


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke the key with id KEY_ID."""
    from shared.api_keys import revoke_key

    if not revoke_key(current_settings().database_url, key_id):
        raise click.ClickException(f"no key {key_id}")
    click.echo(f"revoked {key_id}")


@click.group()
def db() -> None:
    """Database administration."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations up to the latest schema."""
    from shared.db.migrate import upgrade

    upgrade(current_settings().database_url)
    click.echo("database is up to date")


@click.command("fetch-mnist")
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="a copy of Keras's mnist.npz (default: download it with Keras's loader)",
)
def datasets_fetch_mnist(file: Path | None) -> None:
    """Register Keras's MNIST (sha256 checked) as dataset 'mnist' in storage, for every worker."""
    from shared.dataset_registry import (
        MNIST_NAME,
        DatasetExists,
        fetch_mnist,
        register_dataset,
        upload_limits,
    )
    from shared.datasets import DatasetError
    from shared.storage import open_store

    settings = current_settings()
    migrate_if_embedded(settings)
    try:
        data = fetch_mnist(file)
        dataset = register_dataset(
            settings.database_url,
            open_store(settings),
            MNIST_NAME,
            data,
            upload_limits(settings),
        )
    except DatasetError as error:
        raise click.ClickException(error.message) from None
    except DatasetExists:
        raise click.ClickException("dataset 'mnist' is already registered") from None
    click.echo(f"registered dataset 'mnist' ({dataset.size_bytes} bytes, {dataset.arrays})")


COMMANDS: tuple[click.Command, ...] = (keys, db)
"""Top-level admin commands; ``datasets_fetch_mnist`` joins the client's ``datasets`` group."""
