"""The sweeps' part of the OpenAPI document (issue 15): schemas of a sweep's request and views,
and its operations (``services/api/openapi.py`` joins them to the rest)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.datasets import DATASET_NAME
from shared.job_specs import PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN
from shared.job_state import JobStatus
from shared.kinds import KIND_SPECS
from shared.sweeps.spec import DIRECTIONS, MAX_PARALLEL, MAX_TRIALS, MAX_VALUES, PRUNERS, SAMPLERS

Schema = dict[str, Any]
NUMBER: Schema = {"type": "number"}
SWEEP_STATUSES = ("queued", "running", "succeeded", "failed", "cancelling", "cancelled")


def _obj(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    required = [name for name in properties if name not in optional]
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    return {**schema, "required": required} if required else schema


def _null(schema: Schema) -> Schema:
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    return {**schema, "type": [schema["type"], "null"]}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _int(low: int, high: int, **keywords: Any) -> Schema:
    return {"type": "integer", "minimum": low, "maximum": high, **keywords}


def _time(null: bool = False) -> Schema:
    schema: Schema = {"type": "string", "format": "date-time"}
    return _null(schema) if null else schema


def sweep_schemas() -> dict[str, Schema]:
    """The sweep's request, its dimensions, its trials and its views."""
    scalar = {"type": ["string", "number", "boolean"]}
    dimension = {
        "oneOf": [
            _obj(
                {
                    "values": {
                        "type": "array",
                        "items": scalar,
                        "minItems": 1,
                        "maxItems": MAX_VALUES,
                    }
                }
            ),
            _obj(
                {"low": NUMBER, "high": NUMBER, "log": {"type": "boolean"}, "step": NUMBER},
                optional=("log", "step"),
            ),
        ],
        "description": "values to try, or a numeric range inside the parameter's own bounds",
    }
    objective = _obj(
        {
            "metric": {"type": "string", "description": "a result the kind reports, e.g. test_mse"},
            "direction": {"type": "string", "enum": list(DIRECTIONS)},
        },
        optional=("direction",),
    )
    submission = _obj(
        {
            "kind": {"type": "string", "enum": list(KIND_SPECS)},
            "dataset": {"type": "string", "pattern": DATASET_NAME.pattern},
            "params": {"type": "object", "description": "fixed parameters of every trial"},
            "space": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": _ref("SweepDimension"),
                "description": "the parameters searched (422 naming space.<name>.<key> when one "
                "is unknown or out of the parameter's range)",
            },
            "sampler": {"type": "string", "enum": list(SAMPLERS), "default": "tpe"},
            "trials": _int(1, MAX_TRIALS, description="default: the grid's size, else 10"),
            "parallel": _int(1, MAX_PARALLEL, default=1, description="trials queued or running"),
            "objective": objective,
            "pruner": {"type": "string", "enum": list(PRUNERS), "default": "none"},
            "seed": _int(0, 2**31 - 1),
            "priority": _int(PRIORITY_MIN, PRIORITY_MAX, default=PRIORITY_DEFAULT),
        },
        optional=("params", "sampler", "trials", "parallel", "pruner", "seed", "priority"),
    )
    trial = _obj(
        {
            "job_id": {"type": "string"},
            "trial": _null({"type": "integer"}),
            "status": {"type": "string", "enum": [str(s) for s in JobStatus]},
            "params": {"type": "object", "description": "the searched parameters' values"},
            "objective": _null(NUMBER),
            "progress": NUMBER,
            "started_at": _time(null=True),
            "finished_at": _time(null=True),
            "duration_seconds": _null(NUMBER),
            "error": _null({"type": "string"}),
        }
    )
    summary: dict[str, Schema] = {
        "id": {"type": "string"},
        "kind": {"type": "string", "enum": list(KIND_SPECS)},
        "dataset": _null({"type": "string"}),
        "status": {"type": "string", "enum": list(SWEEP_STATUSES)},
        "sampler": {"type": "string", "enum": list(SAMPLERS)},
        "pruner": {"type": "string", "enum": list(PRUNERS)},
        "trials": {"type": "integer"},
        "parallel": {"type": "integer"},
        "objective": objective,
        "seed": _null({"type": "integer"}),
        "priority": {"type": "integer"},
        "created_at": _time(),
        "cancelled_at": _time(null=True),
        "finished_at": _time(null=True),
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "best": _null(_ref("SweepTrial")),
    }
    full = {
        **summary,
        "params": {"type": "object"},
        "space": {"type": "object"},
        "trial_jobs": {"type": "array", "items": _ref("SweepTrial")},
        "importances": {
            "type": ["object", "null"],
            "additionalProperties": NUMBER,
            "description": "each searched parameter's share in explaining the objective "
            "(PED-ANOVA), once 4 trials succeeded; GET /v1/sweeps/{sweep_id} only",
        },
    }
    return {
        "SweepSubmission": submission,
        "SweepDimension": dimension,
        "SweepTrial": trial,
        "SweepSummary": _obj(summary),
        "Sweep": _obj(full, optional=("importances",)),
        "SweepList": _obj(
            {
                "items": {"type": "array", "items": _ref("SweepSummary")},
                "total": {"type": "integer"},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
            }
        ),
    }


def sweep_operations(
    operation: Callable[..., tuple[str, str, dict[str, Any]]],
    found: Callable[..., dict[int, Any]],
    header: Callable[..., dict[str, Any]],
) -> list[tuple[str, str, dict[str, Any]]]:
    """The sweeps' operations, built with ``openapi.py``'s helpers."""
    from services.api.routes import sweeps

    sweep = "/v1/sweeps/{sweep_id}"
    location = {"Location": header("the sweep's URL, /v1/sweeps/{sweep_id}")}
    body = {
        "required": True,
        "content": {"application/json": {"schema": _ref("SweepSubmission")}},
    }
    accepted = found("Sweep", 202, "Accepted: its first trials queued.", headers=location)
    return [
        operation(
            "post /v1/sweeps", sweeps.submit_sweep, accepted, "400 403 409 413 415 422 429", body
        ),
        operation(
            "get /v1/sweeps",
            sweeps.list_sweeps,
            found("SweepList"),
            "422 Limit Offset SweepIdPrefix",
        ),
        operation(f"get {sweep}", sweeps.get_sweep, found("Sweep"), "404 SweepId"),
        operation(f"post {sweep}/cancel", sweeps.cancel, found("Sweep", 202), "404 409 SweepId"),
    ]
