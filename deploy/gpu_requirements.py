"""Print the ``train`` extra of pyproject.toml with TensorFlow swapped for ``tensorflow[and-cuda]``.

The GPU image (``deploy/Dockerfile`` with ``--build-arg TF_VARIANT=gpu``) installs ``.`` plus
these lines, so the Keras pin and the TensorFlow version stay defined once, in pyproject.toml.
Usage: python deploy/gpu_requirements.py [pyproject.toml] > requirements-gpu.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

TENSORFLOW = {"tensorflow", "tensorflow-cpu"}


def gpu_requirements(pyproject: Path) -> list[str]:
    """The ``train`` extra's requirements, TensorFlow entries replaced by one CUDA one."""
    extra = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]["train"]
    lines: list[str] = []
    tensorflow_spec: str | None = None
    for requirement in extra:
        spec = requirement.split(";", 1)[0].strip()
        name = re.match(r"[A-Za-z0-9._-]+", spec)
        if name and re.sub(r"[._]", "-", name.group(0).lower()) in TENSORFLOW:
            if tensorflow_spec is None:
                tensorflow_spec = spec[name.end() :].strip()
            continue
        lines.append(requirement)
    if tensorflow_spec is None:
        sys.exit(f"{pyproject}: no tensorflow requirement in the 'train' extra")
    return [f"tensorflow[and-cuda]{tensorflow_spec}", *lines]


if __name__ == "__main__":
    print("\n".join(gpu_requirements(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))))
