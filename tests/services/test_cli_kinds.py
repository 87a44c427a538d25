"""`gentrain kinds`, submit's KIND choice and typed `-p` values, from the kind definitions."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import click
import pytest
from click.testing import CliRunner
from pydantic import Field

from services.cli import client_commands
from services.cli.kind_commands import parse_params
from services.cli.main import cli
from shared.kinds import KIND_SPECS, DenoiserParams, GanParams, SampleParams


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_kinds_lists_every_defined_kind() -> None:
    result = run("kinds")
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.output.splitlines()]
    assert names == list(KIND_SPECS)
    assert KIND_SPECS["gan"].description in result.output
    assert json.loads(run("kinds", "--json").output) == {
        name: spec.description for name, spec in KIND_SPECS.items()
    }


def test_kinds_shows_one_kinds_parameters() -> None:
    result = run("kinds", "gan")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines() if line}
    assert lines["steps_per_epoch"][1:4] == ["integer", "100", "1..100000"]
    assert lines["learning_rate"][1:4] == ["number", "0.0004", "1e-06..1"]
    assert lines["count"][1:4] == ["integer", "16", "1..1024"]  # sampling parameters
    assert "steps must be a multiple of steps_per_epoch" in result.output
    assert "samples/generated.png" in result.output
    denoiser = run("kinds", "denoiser").output
    clip = next(line for line in denoiser.splitlines() if line.startswith("clip "))
    assert clip.split()[1:3] == ["boolean", "false"] and "the seed does not" in clip
    assert "needs labels" in run("kinds", "classifier").output
    schemas = json.loads(run("kinds", "autoencoder", "--json").output)
    assert schemas["params"]["properties"]["epochs"]["default"] == 50
    assert list(schemas["sample_params"]["properties"]) == ["count", "seed"]


def test_kinds_of_an_unknown_kind_is_a_usage_error() -> None:
    result = run("kinds", "flow")
    assert result.exit_code == 2 and "unknown kind 'flow'" in result.output


class ArchitectureDenoiserParams(DenoiserParams):
    """Parameters of a denoiser job, with a choice of network."""

    architecture: Literal["dense", "conv"] = Field("dense", description="the network")
    widths: list[int] | None = Field(None, description="hidden layer widths")


def test_kinds_shows_an_option_added_to_the_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(KIND_SPECS["denoiser"], params=ArchitectureDenoiserParams)
    monkeypatch.setitem(KIND_SPECS, "denoiser", spec)
    output = run("kinds", "denoiser").output
    line = next(line for line in output.splitlines() if line.startswith("architecture"))
    assert line.split()[1:3] == ["dense|conv", '"dense"'] and "the network" in line
    widths = next(line for line in output.splitlines() if line.startswith("widths"))
    assert widths.split()[1:5] == ["list", "of", "integer|null", "null"]


def test_param_values_are_read_by_their_type() -> None:
    pairs = ("steps=10", "learning_rate=1", "label_smoothing=0.1", "mixed_precision=yes")
    params = parse_params(pairs, GanParams)
    assert params == {
        "steps": 10,
        "learning_rate": 1.0,
        "label_smoothing": 0.1,
        "mixed_precision": True,
    }
    assert isinstance(params["learning_rate"], float)
    assert parse_params(("count=4", "seed=0"), SampleParams) == {"count": 4, "seed": 0}
    # Unknown keys keep the JSON (or text) reading; the API names them.
    assert parse_params(("epochz=3", "mode=fast"), GanParams) == {"epochz": 3, "mode": "fast"}
    extended = parse_params(
        ("architecture=conv", "widths=64,32", "clip=false"), ArchitectureDenoiserParams
    )
    assert extended == {"architecture": "conv", "widths": [64, 32], "clip": False}
    assert parse_params(("widths=null",), ArchitectureDenoiserParams) == {"widths": None}
    assert parse_params(("widths=[8]",), ArchitectureDenoiserParams) == {"widths": [8]}


@pytest.mark.parametrize(
    "pair", ["steps=ten", "steps=2.5", "mixed_precision=maybe", "learning_rate=fast", "steps"]
)
def test_a_value_of_the_wrong_type_is_refused_before_sending(pair: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_params((pair,), GanParams)


class FakeClient:
    """Records what ``submit`` would send."""

    sent: list[tuple[str, str, dict[str, Any]]] = []

    def submit(
        self, kind: str, dataset: str, params: dict[str, Any], priority: int | None = None
    ) -> dict[str, Any]:
        self.sent.append((kind, dataset, params))
        return {"id": "job-1"}


def test_submit_takes_a_defined_kind_and_typed_params(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_commands, "_client", lambda api_url: FakeClient())
    FakeClient.sent.clear()
    result = run("submit", "denoiser", "--dataset", "mnist", "-p", "epochs=3", "-p", "clip=true")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "job-1"
    assert FakeClient.sent == [("denoiser", "mnist", {"epochs": 3, "clip": True})]
    unknown = run("submit", "flow", "--dataset", "mnist")
    assert unknown.exit_code == 2 and "'flow' is not one of" in unknown.output
    bad = run("submit", "gan", "--dataset", "mnist", "-p", "steps=many")
    assert bad.exit_code == 2 and "steps='many': expected integer" in bad.output
    assert len(FakeClient.sent) == 1
