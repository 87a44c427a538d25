"""Validation of a sweep's spec (issue 15): the space against the kind's parameter definitions,
the objective against what the kind reports; errors name the field (``space.<name>.low``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shared.job_specs import SpecError, check_params
from shared.kinds import KIND_SPECS, KindSpec

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "hyperband")
DIRECTIONS = ("minimize", "maximize")
MAX_TRIALS = 1000
MAX_PARALLEL = 64
MAX_VALUES = 100
SPEC_FIELDS = {
    "kind",
    "dataset",
    "params",
    "space",
    "sampler",
    "trials",
    "parallel",
    "objective",
    "pruner",
    "seed",
    "priority",
}

# What each kind reports and whether less is better. Results on the held-out split carry its
# name as a prefix (``test_`` when the dataset has x_test, else ``train_``); the GAN's do not.
_SPLIT_RESULTS = {
    "classifier": {"accuracy": "maximize", "loss": "minimize"},
    "autoencoder": {"mse": "minimize", "psnr_db": "maximize", "ssim": "maximize"},
    "denoiser": {
        "mse": "minimize",
        "psnr_db": "maximize",
        "ssim": "maximize",
        "psnr_gain_db": "maximize",
    },
    "vae": {"mse": "minimize", "reconstruction_loss": "minimize", "elbo": "maximize"},
}
_PLAIN_RESULTS = {
    "gan": {"fid": "minimize", "classifier_score": "maximize"},
    "vae": {"fid": "minimize", "classifier_score": "maximize"},
}


def objectives(kind: str) -> dict[str, str]:
    """Every result ``kind`` reports that a sweep may optimise, with its natural direction."""
    found = dict(_PLAIN_RESULTS.get(kind, {}))
    for name, direction in _SPLIT_RESULTS.get(kind, {}).items():
        found[f"test_{name}"] = direction
        found[f"train_{name}"] = direction
    return found


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: fixed params (defaults filled), the space, and how to search it."""

    kind: str
    params: dict[str, Any]
    space: dict[str, dict[str, Any]]
    sampler: str
    trials: int
    parallel: int
    metric: str
    direction: str
    pruner: str
    seed: int | None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_value(spec: KindSpec, fixed: dict[str, Any], name: str, value: Any, field: str) -> None:
    """``value`` for parameter ``name`` must pass the kind's definition with the fixed params."""
    try:
        check_params({**fixed, name: value}, spec.params)
    except SpecError as error:
        message = error.message.replace(f"params.{name}", field)
        if error.field != f"params.{name}":
            message = f"{field}: {error.message}"
        raise SpecError(field, message) from None


def _dimension(spec: KindSpec, fixed: dict[str, Any], name: str, dim: Any) -> dict[str, Any]:
    """One dimension of the space, checked: ``{"values": [...]}`` or ``{"low", "high", "log",
    "step"}`` inside the parameter's own range."""
    field = f"space.{name}"
    if name not in spec.params.model_fields:
        known = ", ".join(sorted(spec.params.model_fields))
        raise SpecError(field, f"unknown parameter {name!r}; known: {known}")
    if name in fixed:
        raise SpecError(field, f"{name} is both fixed in params and searched in space")
    if not isinstance(dim, dict):
        raise SpecError(field, f"{field} must be an object: {{values}} or {{low, high, log}}")
    if "values" in dim:
        unknown = sorted(set(dim) - {"values"})
        if unknown:
            raise SpecError(f"{field}.{unknown[0]}", f"{field} takes values or low/high, not both")
        values = dim["values"]
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_VALUES:
            raise SpecError(f"{field}.values", f"{field}.values must be a list of 1-{MAX_VALUES}")
        for index, value in enumerate(values):
            if not isinstance(value, str | int | float | bool) or (
                isinstance(value, float) and not math.isfinite(value)
            ):
                raise SpecError(f"{field}.values", f"{field}.values[{index}] must be a scalar")
            _check_value(spec, fixed, name, value, f"{field}.values")
        if len(set(map(repr, values))) != len(values):
            raise SpecError(f"{field}.values", f"{field}.values has duplicates")
        return {"values": values}
    unknown = sorted(set(dim) - {"low", "high", "log", "step"})
    if unknown:
        raise SpecError(f"{field}.{unknown[0]}", f"unknown key {unknown[0]!r} in {field}")
    kind_of = spec.params.model_json_schema()["properties"][name].get("type")
    if kind_of not in ("integer", "number"):
        raise SpecError(field, f"{name} is not numeric: give {field}.values")
    checked: dict[str, Any] = {}
    for bound in ("low", "high"):
        value = dim.get(bound)
        if not _is_number(value) or (kind_of == "integer" and not isinstance(value, int)):
            what = "an integer" if kind_of == "integer" else "a number"
            raise SpecError(f"{field}.{bound}", f"{field}.{bound} must be {what}")
        _check_value(spec, fixed, name, value, f"{field}.{bound}")
        checked[bound] = value
    if checked["low"] > checked["high"]:
        raise SpecError(f"{field}.high", f"{field}.high must be at least {field}.low")
    log = dim.get("log", False)
    if not isinstance(log, bool):
        raise SpecError(f"{field}.log", f"{field}.log must be true or false")
    if log and checked["low"] <= 0:
        raise SpecError(f"{field}.low", f"{field}.low must be above 0 on a log scale")
    checked["log"] = log
    step = dim.get("step")
    if step is not None:
        wrong_type = kind_of == "integer" and not isinstance(step, int)
        if not _is_number(step) or step <= 0 or wrong_type:
            raise SpecError(f"{field}.step", f"{field}.step must be a positive number")
        if log:
            raise SpecError(f"{field}.step", f"{field}.step cannot be used with log")
        checked["step"] = step
    checked["integer"] = kind_of == "integer"
    return checked


def _bounded_int(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(name, f"{name} must be an integer from {low} to {high}")
    return value


def _choice(body: dict[str, Any], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = body.get(name, default)
    if value not in choices:
        raise SpecError(name, f"{name} must be one of {', '.join(choices)}")
    return str(value)


def _objective(kind: str, value: Any) -> tuple[str, str]:
    if not isinstance(value, dict):
        raise SpecError("objective", "objective must be an object: {metric, direction}")
    unknown = sorted(set(value) - {"metric", "direction"})
    if unknown:
        raise SpecError(f"objective.{unknown[0]}", f"unknown field {unknown[0]!r} in objective")
    reported = objectives(kind)
    metric = value.get("metric")
    if metric not in reported:
        raise SpecError(
            "objective.metric",
            f"a {kind} job never reports {metric!r}; it reports {', '.join(sorted(reported))}",
        )
    direction = value.get("direction", reported[metric])
    if direction not in DIRECTIONS:
        raise SpecError("objective.direction", "objective.direction must be minimize or maximize")
    return str(metric), str(direction)


def validate_sweep_spec(body: dict[str, Any], max_runtime_cap: int | None = None) -> SweepSpec:
    """Check a sweep's request body (all but ``dataset`` and ``priority``); raises SpecError
    naming the field."""
    unknown = sorted(set(body) - SPEC_FIELDS)
    if unknown:
        raise SpecError(unknown[0], f"unknown field {unknown[0]!r}")
    kind = body.get("kind")
    spec = KIND_SPECS.get(kind) if isinstance(kind, str) else None
    if spec is None or kind is None:
        raise SpecError("kind", f"unknown kind {kind!r}; available: {', '.join(KIND_SPECS)}")
    raw = body.get("params") or {}
    params = check_params(raw, spec.params)
    if max_runtime_cap is not None and params["max_runtime_seconds"] > max_runtime_cap:
        raise SpecError(
            "params.max_runtime_seconds", f"max_runtime_seconds must be at most {max_runtime_cap}"
        )
    space = body.get("space")
    if not isinstance(space, dict) or not space:
        raise SpecError("space", "space must be an object naming at least one parameter")
    dims = {name: _dimension(spec, raw, name, dim) for name, dim in space.items()}
    sampler = _choice(body, "sampler", "tpe", SAMPLERS)
    grid = 0
    if sampler == "grid":
        grid = 1
        for name, dim in dims.items():
            if "values" not in dim:
                raise SpecError(f"space.{name}", f"the grid sampler needs space.{name}.values")
            grid *= len(dim["values"])
    trials = _bounded_int(body, "trials", grid or 10, 1, MAX_TRIALS)
    if grid and trials > grid:
        raise SpecError("trials", f"trials must be at most {grid}, the grid's size")
    parallel = _bounded_int(body, "parallel", 1, 1, MAX_PARALLEL)
    metric, direction = _objective(kind, body.get("objective"))
    pruner = _choice(body, "pruner", "none", PRUNERS)
    seed = body.get("seed")
    if seed is not None:
        seed = _bounded_int(body, "seed", 0, 0, 2**31 - 1)
    return SweepSpec(
        kind, params, dims, sampler, trials, min(parallel, trials), metric, direction, pruner, seed
    )
