"""``gentrain kinds [KIND]`` and the typed parsing of ``-p KEY=VALUE``, both from the kind
definitions in ``shared.kinds`` (the same JSON schemas the OpenAPI document shows)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
from pydantic import BaseModel

from shared.kinds import KIND_SPECS, params_json_schema

TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
NULL = ("null", "none")
Schema = dict[str, Any]


def type_name(prop: Schema) -> str:
    """A parameter's type in words: integer, number, boolean, string, 'a|b', list of X, X|null."""
    if "anyOf" in prop:
        return "|".join(type_name(option) for option in prop["anyOf"])
    if "enum" in prop:
        return "|".join(str(choice) for choice in prop["enum"])
    if "const" in prop:
        return str(prop["const"])
    if prop.get("type") == "array":
        return f"list of {type_name(prop.get('items', {}))}"
    return str(prop.get("type", "any"))


def bounds_text(prop: Schema) -> str:
    """``low..high`` (or ``>= low``, ``<= high``) for a bounded number; empty otherwise."""
    for option in prop.get("anyOf", [prop]):
        low, high = option.get("minimum"), option.get("maximum")
        if low is not None and high is not None:
            return f"{_number(low)}..{_number(high)}"
        if low is not None:
            return f">= {_number(low)}"
        if high is not None:
            return f"<= {_number(high)}"
    return ""


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def parse_value(name: str, prop: Schema, raw: str) -> Any:
    """``raw`` read as parameter ``name`` of schema ``prop``; BadParameter if it cannot be."""
    if "anyOf" in prop:
        if raw.lower() in NULL:
            return None
        typed = [option for option in prop["anyOf"] if option.get("type") != "null"]
        if len(typed) == 1:
            return parse_value(name, typed[0], raw)
        # The first option that reads it: a choice that names it, or a type that parses it
        # (digits: "all" or "7,3").
        for option in typed:
            choices = option.get("enum", [option["const"]] if "const" in option else None)
            if choices is not None:
                if raw in choices:
                    return raw
                continue
            try:
                return parse_value(name, option, raw)
            except click.BadParameter:
                continue
        return _json_or_text(raw)
    kind = prop.get("type")
    try:
        if "enum" in prop or kind == "string":
            return raw
        if kind == "boolean":
            if raw.lower() not in TRUE + FALSE:
                raise ValueError
            return raw.lower() in TRUE
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
        if kind == "array":
            if raw.startswith("["):
                return json.loads(raw)
            items = prop.get("items", {})
            return [parse_value(name, items, part.strip()) for part in raw.split(",") if part]
    except ValueError:
        raise click.BadParameter(
            f"{name}={raw!r}: expected {type_name(prop)}", param_hint="--param"
        ) from None
    return _json_or_text(raw)


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def parse_params(
    pairs: tuple[str, ...], model: type[BaseModel] | Sequence[type[BaseModel]] | None = None
) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as params: by the parameter's type in ``model`` (or the first of
    several models that has it) where one has it, else as JSON (or text); the API names
    whatever is wrong with them."""
    models = [] if model is None else [model] if isinstance(model, type) else list(model)
    properties: Schema = {}
    for each in models:
        properties = params_json_schema(each)["properties"] | properties
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        prop = properties.get(key)
        params[key] = _json_or_text(raw) if prop is None else parse_value(key, prop, raw)
    return params


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Rows as aligned columns (the last one left ragged)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = (
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
    return "\n".join(line.rstrip() for line in lines)


def params_table(model: type[BaseModel]) -> str:
    """One line per parameter: name, type, default, bounds and help."""
    rows = [("name", "type", "default", "range", "help")]
    for name, prop in params_json_schema(model)["properties"].items():
        default = json.dumps(prop.get("default"))
        help_text = prop.get("description", "")
        rows.append((name, type_name(prop), default, bounds_text(prop), help_text))
    return _table(rows)


@click.command()
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="the parameters' JSON schema instead")
def kinds(kind: str | None, as_json: bool) -> None:
    """List the model kinds, or KIND's parameters (type, default, range, help)."""
    if kind is None:
        if as_json:
            click.echo(json.dumps({name: spec.description for name, spec in KIND_SPECS.items()}))
            return
        click.echo(_table([(name, spec.description) for name, spec in KIND_SPECS.items()]))
        return
    spec = KIND_SPECS.get(kind)
    if spec is None:
        known = ", ".join(KIND_SPECS)
        raise click.BadParameter(f"unknown kind {kind!r}; known: {known}", param_hint="KIND")
    if as_json:
        schemas = {"params": params_json_schema(spec.params)}
        schemas["sample_params"] = params_json_schema(spec.sample_params)
        click.echo(json.dumps(schemas, indent=2))
        return
    click.echo(f"{spec.name}: {spec.description}")
    notes = [f"final grid {spec.final_grid}"]
    if spec.needs_labels:
        notes.append("needs labels (y_train)")
    notes.extend(f"{name} needs labels (y_train)" for name in spec.label_params)
    if not spec.sampling_needs_dataset:
        notes.append("samples without the dataset")
    click.echo("; ".join(notes))
    description = params_json_schema(spec.params).get("description")
    if description:
        click.echo(description)
    click.echo(f"\ngentrain submit {spec.name} --dataset NAME -p KEY=VALUE ...\n")
    click.echo(params_table(spec.params))
    click.echo("\ngentrain sample JOB_ID -p KEY=VALUE ...\n")
    click.echo(params_table(spec.sample_params))


COMMANDS: tuple[click.Command, ...] = (kinds,)
