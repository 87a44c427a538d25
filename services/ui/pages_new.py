"""The new-job page: a form per model kind generated from the parameter definitions the API
validates with (``shared.kinds``: defaults, bounds, descriptions, choices), the dataset picked
from the caller's own. The page's script (static/new_job.js) posts the form as JSON to
``POST /v1/jobs``, so the API's validation is the only validation; ``?from=<job id>`` prefills
the form from a job ("run again")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Connection, select

from services.api import deps
from services.api.auth import caller, can_see
from services.api.job_reads import DATASETS, JOBS
from services.ui.blueprint import bp
from services.ui.context import ui_url
from services.ui.pages_job import job_not_found
from shared.job_specs import PRIORITY_DEFAULT
from shared.kinds import KIND_SPECS, CommonParams, params_json_schema

_J, _D = JOBS.c, DATASETS.c
# The parameters every kind takes: shown after the kind's own.
COMMON = frozenset(CommonParams.model_fields)


@dataclass(frozen=True)
class ParamField:
    """One parameter as a form field: what the schema says of it and the value to show."""

    name: str
    type: str  # integer, number, boolean, choice or text: how the script types its value
    default: Any
    value: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def field(self) -> str:
        """The name the API gives this parameter in its errors."""
        return f"params.{self.name}"

    @property
    def common(self) -> bool:
        """Whether every kind takes this parameter."""
        return self.name in COMMON

    @property
    def bounds(self) -> str:
        """The allowed range as the help line shows it: ``1 to 1000``, ``at least 0``."""
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f"{_text(low)} to {_text(high)}"
        if low is not None:
            return f"at least {_text(low)}"
        if high is not None:
            return f"at most {_text(high)}"
        return ""


@dataclass(frozen=True)
class KindForm:
    """A model kind's fieldset: its description and parameter fields."""

    name: str
    description: str
    needs_labels: bool
    fields: list[ParamField]
    # Parameters that, set, need labels (a conditional GAN).
    label_params: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """The kind's description, with what it needs of a dataset."""
        needs = "; needs labels (y_train)" if self.needs_labels else ""
        needs += "".join(f"; {name} needs labels (y_train)" for name in self.label_params)
        return f"{self.description}{needs}"


def _text(value: Any) -> str:
    """A default, bound or value as the form writes it (JSON's spelling of booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def param_field(name: str, schema: dict[str, Any], value: Any) -> ParamField:
    """A form field for one parameter from its JSON schema (``params_json_schema``'s)."""
    kind = schema.get("type")
    choices = tuple(schema.get("enum", ()))
    if "const" in schema:
        choices = (schema["const"],)
    if choices:
        field_type = "choice"
    elif kind in ("integer", "number", "boolean"):
        field_type = kind
    else:
        field_type = "text"
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    return ParamField(
        name=name,
        type=field_type,
        default=schema.get("default"),
        value=value,
        description=schema.get("description", ""),
        minimum=low,
        maximum=high,
        choices=choices,
    )


def kind_forms(caps: dict[str, int], values: dict[str, Any] | None = None) -> list[KindForm]:
    """Every model kind's fieldset, in KIND_SPECS order: its own parameters first, then the
    common ones; ``values`` (a job's parameters) replace the defaults of the kind they match."""
    forms = []
    for spec in KIND_SPECS.values():
        schema = params_json_schema(spec.params, caps)["properties"]
        fields = []
        for name, prop in schema.items():
            value = prop.get("default")
            if values is not None and name in values:
                value = values[name]
            fields.append(param_field(name, prop, value))
        fields.sort(key=lambda item: item.common)  # stable: schema order within each group
        forms.append(
            KindForm(spec.name, spec.description, spec.needs_labels, fields, spec.label_params)
        )
    return forms


@dataclass(frozen=True)
class DatasetChoice:
    """A dataset the form offers: its name and what it holds."""

    name: str
    images: int
    labelled: bool


def own_datasets(connection: Connection, owner: str) -> list[DatasetChoice]:
    """The datasets a job of ``owner`` can train on (a job names its owner's), newest first."""
    rows = connection.execute(
        select(_D.name, _D.arrays).where(_D.owner == owner).order_by(_D.created_at.desc())
    ).all()
    choices = []
    for row in rows:
        arrays = row.arrays or {}
        images = int(arrays.get("x_train", {}).get("shape", [0])[0])
        choices.append(DatasetChoice(row.name, images, "y_train" in arrays))
    return choices


@dataclass(frozen=True)
class Prefill:
    """What the form starts from: a kind, a dataset and (from a job) its parameters."""

    kind: str
    dataset: str | None
    params: dict[str, Any] | None
    source: str | None = None  # the job it was taken from
    priority: int = PRIORITY_DEFAULT


def job_prefill(connection: Connection, job_id: str) -> Prefill | None:
    """The kind, dataset and parameters of a job the caller may see, else None (a sampling
    job gives its model's kind and dataset; its own parameters are not training ones)."""
    row = connection.execute(
        select(_J.kind, _J.model_kind, _J.owner, _J.params, _J.priority, _D.name.label("dataset"))
        .select_from(JOBS.outerjoin(DATASETS, _D.id == _J.dataset_id))
        .where(_J.id == job_id)
    ).first()
    if row is None or not can_see(row.owner):
        return None
    kind = row.model_kind if row.model_kind in KIND_SPECS else next(iter(KIND_SPECS))
    params = dict(row.params or {}) if row.kind in KIND_SPECS else None
    return Prefill(kind, row.dataset, params, source=job_id, priority=row.priority)


@bp.get("/new")
def new_job() -> ResponseReturnValue:
    """The new-job form (``?from=<job id>``: prefilled from that job; ``?kind=``, ``?dataset=``:
    those picked)."""
    source = request.args.get("from")
    with deps.db_read() as connection:
        prefill = job_prefill(connection, source) if source else None
        if source and prefill is None:
            return job_not_found(source)
        datasets = own_datasets(connection, caller().owner)
    if prefill is None:
        kind = request.args.get("kind", "")
        # The newest dataset unless one is asked for: most people train on the one they uploaded.
        dataset = request.args.get("dataset") or (datasets[0].name if datasets else None)
        prefill = Prefill(kind if kind in KIND_SPECS else "autoencoder", dataset, None)
    settings = deps.settings()
    caps = {"max_runtime_seconds": settings.max_runtime_cap_seconds}
    forms = kind_forms(caps)
    if prefill.params is not None:
        prefilled = kind_forms(caps, prefill.params)
        forms = [p if p.name == prefill.kind else f for f, p in zip(forms, prefilled, strict=True)]
    client = {
        "submit_url": "/v1/jobs",
        # A job's page is this with its id in place of JOB_ID.
        "job_url": ui_url("ui.job", "/ui/jobs/JOB_ID", job_id="JOB_ID"),
        "kind_help": {form.name: form.summary for form in forms},
    }
    return render_template(
        "new_job.html",
        forms=forms,
        datasets=datasets,
        prefill=prefill,
        known_dataset=any(d.name == prefill.dataset for d in datasets),
        client=client,
        text=_text,
        source_url=ui_url("ui.job", "", job_id=prefill.source) if prefill.source else "",
        upload_url=ui_url("ui.datasets", ""),
        priority_cap=settings.max_priority_without_admin,
    )
