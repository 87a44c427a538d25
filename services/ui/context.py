"""What every dashboard template is given: the caller, the CSRF token of their session, the
top bar's links, and ``ui_url`` (a link to a page that may not be there yet never fails)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import g, request, url_for
from werkzeug.routing import BuildError

from services.ui.blueprint import bp

# The top bar: label and endpoint (each page module adds its endpoint to the blueprint).
NAV = (
    ("Jobs", "ui.jobs"),
    ("New job", "ui.new_job"),
    ("Datasets", "ui.datasets"),
    ("Compare", "ui.compare"),
    ("Sweeps", "ui.sweeps"),
)


@dataclass(frozen=True)
class NavLink:
    """One link of the top bar."""

    label: str
    url: str
    current: bool


@dataclass(frozen=True)
class UiUser:
    """Who the page is shown to; ``signed_in`` when by a session (so Sign out is offered)."""

    owner: str
    is_admin: bool
    signed_in: bool


@bp.app_template_global()
def ui_url(endpoint: str, fallback: str, **values: Any) -> str:
    """The URL of a dashboard page, or ``fallback`` where that page is not there."""
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return fallback


def csrf_token() -> str:
    """The CSRF token of the caller's session ("" without one: keyless or a Bearer key)."""
    session = getattr(g, "web_session", None)
    return session.csrf_token if session is not None else ""


def nav_links() -> list[NavLink]:
    """The top bar's links to the pages that exist, the current one marked."""
    links = []
    for label, endpoint in NAV:
        try:
            url = url_for(endpoint)
        except BuildError:
            continue
        links.append(NavLink(label, url, request.endpoint == endpoint))
    return links


def ui_user() -> UiUser | None:
    """The caller as the top bar shows them; None in keyless mode (one local user)."""
    current = getattr(g, "caller", None)
    if current is None or getattr(g, "keyless", False) or not current.owner:
        return None
    return UiUser(current.owner, current.is_admin, getattr(g, "web_session", None) is not None)


@bp.app_context_processor
def _template_context() -> dict[str, Any]:
    if not request.blueprint or request.blueprint != bp.name:
        return {}
    return {"csrf_token": csrf_token(), "nav": nav_links(), "ui_user": ui_user()}
