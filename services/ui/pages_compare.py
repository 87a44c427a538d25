"""Dashboard: (to be written)."""

from __future__ import annotations

from services.ui.blueprint import bp  # noqa: F401
