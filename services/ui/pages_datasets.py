"""The datasets pages: the caller's datasets (an admin's: everyone's) with an upload form
(static/datasets.js sends it to ``POST /v1/datasets`` showing its progress), and a dataset's
page with a grid of its first images and the count of each label. Tenancy as in the API: another
owner's dataset is not found, except by an admin (``?owner=``)."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import Connection, select

from services.api import deps
from services.api.auth import caller
from services.api.job_reads import DATASETS, AnyRow
from services.api.routes.removal import usage_view
from services.ui import display
from services.ui.blueprint import bp
from services.ui.context import ui_url
from services.ui.dataset_preview import PREVIEWS, Preview, PreviewError
from services.ui.pages_job import notice
from shared.storage import StorageError

_D = DATASETS.c
_COLUMNS = (
    _D.id,
    _D.name,
    _D.owner,
    _D.size_bytes,
    _D.sha256,
    _D.arrays,
    _D.created_at,
    _D.storage_key,
)


class AmbiguousName(Exception):
    """An admin named a dataset several owners have, without saying whose."""


def shape_text(info: dict[str, Any]) -> str:
    """An array's shape and dtype as the page writes it: ``4,000 × 28 × 28 uint8``."""
    shape = " × ".join(f"{size:,}" for size in info.get("shape", []))
    return f"{shape} {info.get('dtype', '')}".strip()


def dataset_row(row: AnyRow) -> dict[str, Any]:
    """A dataset as the pages show it (the API's view, plus its arrays written out)."""
    arrays = row.arrays or {}
    return {
        "id": row.id,
        "name": row.name,
        "owner": row.owner,
        "size_bytes": row.size_bytes,
        "sha256": row.sha256,
        "arrays": arrays,
        "shapes": [(name, shape_text(info)) for name, info in arrays.items()],
        "images": int(arrays.get("x_train", {}).get("shape", [0])[0]),
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "storage_key": row.storage_key,  # for the preview; never shown
    }


def read_datasets(connection: Connection, owner: str | None) -> list[dict[str, Any]]:
    """``owner``'s datasets (None: everyone's), newest first."""
    query = select(*_COLUMNS).order_by(_D.created_at.desc(), _D.name)
    if owner is not None:
        query = query.where(_D.owner == owner)
    return [dataset_row(row) for row in connection.execute(query).all()]


def find_dataset(connection: Connection, name: str, owner: str | None) -> AnyRow | None:
    """The dataset the caller asks for, as ``GET /v1/datasets/<name>`` finds it: their own, or
    (an admin) another owner's by ``owner``, or one name only one owner has. None when not found
    (another owner's is not found either); AmbiguousName when several owners have the name."""
    current = caller()
    wanted = current.owner if owner is None else owner
    if wanted != current.owner and not current.is_admin:
        return None
    query = select(*_COLUMNS).where(_D.name == name)
    found = connection.execute(query.where(_D.owner == wanted)).first()
    if found is None and current.is_admin and owner is None:
        others = connection.execute(query.limit(2)).all()
        if len(others) > 1:
            raise AmbiguousName(name)
        found = others[0] if others else None
    return found


def page_url(endpoint: str, dataset: dict[str, Any]) -> str:
    """A dataset page's URL, naming the owner when it is not the caller's."""
    owner = dataset["owner"] if dataset["owner"] != caller().owner else None
    return url_for(endpoint, name=dataset["name"], owner=owner)


@bp.get("/datasets")
def datasets() -> ResponseReturnValue:
    """The list of datasets and the upload form."""
    current = caller()
    with deps.db_read() as connection:
        rows = read_datasets(connection, None if current.is_admin else current.owner)
    for row in rows:
        row["url"] = page_url("ui.dataset", row)
    settings = deps.settings()
    client = {
        "upload_url": "/v1/datasets",
        # A dataset's page is this with its name in place of DATASET_NAME.
        "dataset_url": url_for("ui.dataset", name="DATASET_NAME"),
        "max_upload_bytes": settings.max_upload_bytes,
        "show_owner": current.is_admin and bool(current.owner),
    }
    return render_template(
        "datasets.html",
        rows=rows,
        client=client,
        display=display,
        show_owner=client["show_owner"],
        max_upload=display.size(settings.max_upload_bytes),
        usage=usage_view(current.owner),
    )


def _dataset_or_notice(name: str) -> dict[str, Any] | ResponseReturnValue:
    try:
        with deps.db_read() as connection:
            found = find_dataset(connection, name, request.args.get("owner"))
    except AmbiguousName:
        message = f"Several owners have a dataset {name!r}: open it from the list."
        return notice("Which dataset?", message, 409)
    if found is None:
        return notice("Dataset not found", f"There is no dataset {name!r} you can see.", 404)
    return dataset_row(found)


def _preview(dataset: dict[str, Any]) -> tuple[Preview | None, str | None]:
    """The dataset's preview, or why there is none."""
    try:
        return PREVIEWS.get(deps.store(), dataset["storage_key"]), None
    except (PreviewError, StorageError) as error:
        return None, str(error)


@bp.get("/datasets/<name>")
def dataset(name: str) -> ResponseReturnValue:
    """One dataset: its arrays, a grid of its first images and its labels' histogram."""
    found = _dataset_or_notice(name)
    if not isinstance(found, dict):
        return found
    preview, problem = _preview(found)
    counts = preview.label_counts if preview else None
    total = sum(counts) if counts else 0
    own = found["owner"] == caller().owner
    return render_template(
        "dataset.html",
        dataset=found,
        preview=preview,
        problem=problem,
        counts=counts,
        most=max(counts) if counts else 0,
        total=total,
        display=display,
        grid_url=page_url("ui.dataset_grid", found),
        delete_url=page_url("ui.delete_dataset", found),
        new_job_url=ui_url("ui.new_job", "", dataset=found["name"]) if own else "",
        show_owner=caller().is_admin and bool(caller().owner),
    )


@bp.get("/datasets/<name>/grid.png")
def dataset_grid(name: str) -> ResponseReturnValue:
    """The PNG grid of the dataset's first images (cached by the browser until it changes)."""
    found = _dataset_or_notice(name)
    if not isinstance(found, dict):
        return found
    preview, problem = _preview(found)
    if preview is None:
        return notice("No preview", problem or "The dataset cannot be previewed.", 422)
    response = Response(preview.png, mimetype="image/png")
    response.set_etag(f"{found['sha256']}-{preview.images}")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response.make_conditional(request)
