"""The GAN's options and a conditional GAN's sampling digits in the CLI, from the definitions."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from services.cli import client_commands
from services.cli.kind_commands import parse_params
from services.cli.main import cli
from shared.kinds import GanParams, GanSampleParams, sample_param_models

JOB_ID = "0123456789abcdef0123456789abcdef"


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_kinds_gan_shows_the_options_and_digits() -> None:
    output = run("kinds", "gan").output
    lines = {line.split()[0]: line for line in output.splitlines() if line.strip()}
    assert lines["architecture"].split()[1:3] == ["seed|dcgan", '"seed"']
    assert lines["loss"].split()[1:3] == ["bce|hinge", '"bce"']
    assert lines["conditional"].split()[1:3] == ["boolean", "false"]
    assert lines["digits"].split()[1:3] == ["list", "of"]
    assert "integer|all|null" in lines["digits"]
    assert "conditional needs labels (y_train)" in output


def test_options_and_digits_are_read_by_their_type() -> None:
    assert parse_params(("architecture=dcgan", "loss=hinge", "conditional=true"), GanParams) == {
        "architecture": "dcgan",
        "loss": "hinge",
        "conditional": True,
    }
    for model in (GanSampleParams, sample_param_models()):
        assert parse_params(("digits=7,3",), model) == {"digits": [7, 3]}
        assert parse_params(("digits=all",), model) == {"digits": "all"}
        assert parse_params(("digits=[1]",), model) == {"digits": [1]}
        assert parse_params(("digits=null",), model) == {"digits": None}
        assert parse_params(("digits=7",), model) == {"digits": [7]}
        # What no option reads goes as typed: the API names it.
        assert parse_params(("digits=some",), model) == {"digits": "some"}
        assert parse_params(("count=4",), model) == {"count": 4}


class FakeClient:
    """Records what ``sample`` would send."""

    sent: list[tuple[str, dict[str, Any], int | None]] = []

    def sample(self, job_id: str, params: dict[str, Any], priority: int | None = None) -> Any:
        self.sent.append((job_id, params, priority))
        return {"id": "sample-1"}


def test_sample_sends_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_commands, "_client", lambda api_url: FakeClient())
    FakeClient.sent.clear()
    result = run("sample", JOB_ID, "-p", "digits=7,7", "-p", "count=20")
    assert result.exit_code == 0, result.output
    assert FakeClient.sent == [(JOB_ID, {"digits": [7, 7], "count": 20}, None)]
    assert run("sample", JOB_ID, "-p", "digits=all").exit_code == 0
    assert FakeClient.sent[-1][1] == {"digits": "all"}
