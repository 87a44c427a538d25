"""Seconds per GAN training step of each network option against the seed's, in one process on
the same data (the 4,000 training digits of tests/fixtures/mnist_5k.npz), default parameters.

    .venv/bin/python bench/gan_step_time.py [--steps 30] [--runs seed,dcgan,...]

A run is ``name=overrides`` from RUNS below. Each builds the GAN, runs a few warm-up steps (graph
tracing), then times ``--steps`` steps of ``fit``, three times, and reports the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.job_specs import validate_training_spec  # noqa: E402
from workers.engine.data import load_arrays  # noqa: E402

RUNS: dict[str, dict[str, Any]] = {
    "seed": {},
    "dcgan": {"architecture": "dcgan"},
    "hinge": {"loss": "hinge"},
    "conditional": {"conditional": True},
    "dcgan+hinge+conditional": {"architecture": "dcgan", "loss": "hinge", "conditional": True},
}
FIXTURE = ROOT / "tests" / "fixtures" / "mnist_5k.npz"


def seconds_per_step(overrides: dict[str, Any], steps: int, repeats: int = 3) -> float:
    """The median over ``repeats`` timed blocks of ``steps`` steps, after a warm-up block."""
    import keras

    from workers.engine.kinds import KINDS

    keras.utils.set_random_seed(0)
    params = validate_training_spec("gan", {"quality_samples": 0, **overrides})
    kind = KINDS["gan"]
    built = kind.build(params)
    plan = kind.plan(load_arrays(FIXTURE), params, params["batch_size"])
    built.model.fit(plan.train, epochs=1, steps_per_epoch=5, verbose=0)  # tracing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        built.model.fit(plan.train, epochs=1, steps_per_epoch=steps, verbose=0)
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def main() -> None:
    """Time each run and print its seconds per step and its ratio to the seed's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--runs", default=",".join(RUNS))
    args = parser.parse_args()
    names = args.runs.split(",")
    results = {name: seconds_per_step(RUNS[name], args.steps) for name in names}
    seed = results.get("seed")
    for name, seconds in results.items():
        ratio = f"{seconds / seed:.2f}x the seed's" if seed else ""
        print(f"{name:28s} {1000 * seconds:8.1f} ms/step  {ratio}", flush=True)


if __name__ == "__main__":
    main()
