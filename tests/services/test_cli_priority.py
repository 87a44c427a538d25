"""`gentrain submit --priority` and `gentrain sample --priority` against a real API served over
HTTP on loopback; `gentrain status` shows the priority of a job and of each listed job."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.settings import Settings
from tests.services.test_cli_removal import api_url, gentrain
from tests.services.ui.written_jobs import finished_gan

__all__ = ["api_url"]  # the fixture, used by name


def test_priority_on_submit_sample_and_status(
    api_url: str, settings: Settings, mnist_path: Path
) -> None:
    assert gentrain(api_url, "datasets", "upload", str(mnist_path), "--name", "mnist")[0] == 0
    submit = ("submit", "autoencoder", "--dataset", "mnist", "-p", "epochs=1")
    code, urgent = gentrain(api_url, *submit, "--priority", "9")
    assert code == 0, urgent
    code, plain = gentrain(api_url, *submit)
    assert code == 0, plain
    urgent, plain = urgent.strip(), plain.strip()

    code, out = gentrain(api_url, "status", urgent, "-o", "json")
    assert code == 0 and json.loads(out)["priority"] == 9
    code, out = gentrain(api_url, "status", urgent)  # the readable view
    assert code == 0 and re.search(r"priority\W+9\b", out), out
    code, table = gentrain(api_url, "status")
    assert code == 0 and "pri" in table.lower().splitlines()[0].split(), table
    code, out = gentrain(api_url, "status", "-o", "json")
    listed = {job["id"]: job["priority"] for job in json.loads(out)["items"]}
    assert listed == {urgent: 9, plain: 5}

    code, out = gentrain(api_url, *submit, "--priority", "10")
    assert code == 2 and "0<=x<=9" in out  # refused before sending
    trained = finished_gan(settings.database_url)  # as a worker writes a finished job
    code, sampling = gentrain(api_url, "sample", trained, "--priority", "3")
    assert code == 0, sampling
    code, out = gentrain(api_url, "status", sampling.strip(), "-o", "json")
    assert code == 0 and json.loads(out)["priority"] == 3
