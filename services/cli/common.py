"""What every group of ``gentrain`` commands shares: settings and embedded-mode migrations."""

from __future__ import annotations

from shared.settings import Settings, get_settings


def current_settings() -> Settings:
    """The settings from the environment (cached; ``--host``/``--port`` clear the cache)."""
    return get_settings()


def migrate_if_embedded(settings: Settings) -> None:
    """Apply migrations when running on the embedded default (SQLite), which has no setup step."""
    if settings.is_embedded:
        from shared.db.migrate import upgrade

        upgrade(settings.database_url)
