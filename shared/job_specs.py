"""Job-spec validation against the kind definitions (``shared.kinds``), with errors that name
the offending field (``kind``, ``params.<name>``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shared.kinds import KIND_SPECS, RuleError, SampleParams


class SpecError(Exception):
    """A job spec that cannot be accepted; names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# Messages by pydantic error type; {label} is the field, as before pydantic.
_MESSAGES = {
    "int_type": "{label} must be an integer",
    "int_parsing": "{label} must be an integer",
    "int_from_float": "{label} must be an integer",
    "float_type": "{label} must be a number",
    "float_parsing": "{label} must be a number",
    "finite_number": "{label} must be a finite number",
    "bool_type": "{label} must be true or false",
    "bool_parsing": "{label} must be true or false",
    "string_type": "{label} must be a string",
    "list_type": "{label} must be a list",
    "literal_error": "{label} must be one of {expected}",
    "greater_than_equal": "{label} must be at least {ge:g}",
    "less_than_equal": "{label} must be at most {le:g}",
    "greater_than": "{label} must be more than {gt:g}",
    "less_than": "{label} must be less than {lt:g}",
    "too_short": "{label} must have at least {min_length} items",
    "too_long": "{label} must have at most {max_length} items",
}


def _spec_error(error: ErrorDetails, field: str, known: list[str]) -> SpecError:
    """One pydantic error as a SpecError: ``params.<name>`` and a plain message."""
    context = error.get("ctx", {})
    rule = context.get("error")
    if isinstance(rule, RuleError):
        return SpecError(f"{field}.{rule.param}", rule.message)
    loc = error["loc"]
    if not loc:
        return SpecError(field, f"{field}: {error['msg']}")
    name = f"{field}.{loc[0]}"
    if error["type"] == "extra_forbidden":
        return SpecError(name, f"unknown parameter {loc[0]!r}; known: {', '.join(known)}")
    label = name + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])
    template = _MESSAGES.get(error["type"])
    if template is None:
        return SpecError(name, f"{label}: {error['msg']}")
    return SpecError(name, template.format(label=label, **context))


def check_params(
    params: Any,
    model: type[BaseModel],
    field: str = "params",
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``params`` validated by ``model`` (its validators see ``context``), every parameter
    filled in, as a plain JSON dict."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise SpecError(field, f"{field} must be an object")
    try:
        checked = model.model_validate(params, context=context)
    except ValidationError as error:
        errors = error.errors()
        # An unknown parameter first (as a typo explains what follows), then the first error.
        errors.sort(key=lambda item: item["type"] != "extra_forbidden")
        raise _spec_error(errors[0], field, sorted(model.model_fields)) from None
    return checked.model_dump(mode="json")


def validate_training_spec(
    kind: Any, params: Any, max_runtime_cap: int | None = None
) -> dict[str, Any]:
    """Complete and check a training job's params; raises SpecError naming the field."""
    spec = KIND_SPECS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        available = ", ".join(sorted(KIND_SPECS))
        raise SpecError("kind", f"unknown kind {kind!r}; available: {available}")
    checked = check_params(params, spec.params)
    if max_runtime_cap is not None and checked["max_runtime_seconds"] > max_runtime_cap:
        raise SpecError(
            "params.max_runtime_seconds", f"max_runtime_seconds must be at most {max_runtime_cap}"
        )
    return checked


def validate_sample_params(
    params: Any, kind: str | None = None, trained_with: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Complete and check a sampling job's params (for a model of ``kind`` if known, trained
    with the params ``trained_with`` if known: a conditional GAN's digits, say)."""
    spec = KIND_SPECS.get(kind) if kind is not None else None
    context = None if trained_with is None else {"trained_with": trained_with}
    return check_params(params, spec.sample_params if spec else SampleParams, context=context)


PRIORITY_MIN, PRIORITY_MAX, PRIORITY_DEFAULT = 0, 9, 5


def validate_priority(value: Any, cap: int, is_admin: bool) -> int:
    """A job's priority (0-9, default 5); above ``cap`` only for admins. Raises SpecError
    naming ``priority``, or PermissionError for a priority above the cap."""
    if value is None:
        return PRIORITY_DEFAULT
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError("priority", "priority must be an integer")
    if not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise SpecError("priority", f"priority must be {PRIORITY_MIN}-{PRIORITY_MAX}")
    if value > cap and not is_admin:
        raise PermissionError(f"priority above {cap} needs an admin key")
    return value
