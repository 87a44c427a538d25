"""Run by test_engine: split the CPU into 2 logical devices, then train every kind (and each
architecture option) briefly.

Logical devices must be configured before TensorFlow initialises, hence a separate process.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

sys.path.insert(0, str(Path(__file__).parents[2]))
from shared.job_specs import validate_training_spec  # noqa: E402
from tests.workers.tensorboard_events import read_run  # noqa: E402
from tests.workers.test_engine import MemoryReporter  # noqa: E402
from workers.engine.data import load_arrays  # noqa: E402
from workers.engine.distribution import make_strategy  # noqa: E402
from workers.engine.training import train  # noqa: E402

RUNS = [
    ("classifier", {"epochs": 2}),
    ("autoencoder", {"epochs": 3}),
    ("autoencoder", {"epochs": 3, "architecture": "conv"}),
    ("denoiser", {"epochs": 3}),
    ("denoiser", {"epochs": 3, "architecture": "conv"}),
    ("gan", {"steps": 4, "steps_per_epoch": 2, "batch_size": 32, "quality_samples": 100}),
    ("gan", {"steps": 4, "steps_per_epoch": 2, "batch_size": 32, "quality_samples": 0, "ema": 0.9}),
    ("gan", {"steps": 4, "steps_per_epoch": 2, "batch_size": 32, "quality_samples": 0,
             "architecture": "dcgan"}),
    ("gan", {"steps": 4, "steps_per_epoch": 2, "batch_size": 32, "quality_samples": 0,
             "loss": "hinge"}),
    ("gan", {"steps": 4, "steps_per_epoch": 2, "batch_size": 32, "quality_samples": 100,
             "conditional": True}),
    ("vae", {"epochs": 3, "batch_size": 64, "quality_samples": 100}),
    ("vae", {"epochs": 2, "batch_size": 64, "quality_samples": 100, "prior": "mixture"}),
]  # fmt: skip


def main() -> None:
    """Train each kind on two replicas and check it learned."""
    strategy = make_strategy()
    print(f"replicas={strategy.num_replicas_in_sync}", flush=True)
    assert strategy.num_replicas_in_sync == 2
    arrays = load_arrays(Path(sys.argv[1]), max_train_images=2000)
    # By hand: `two_replicas.py FIXTURE gan` runs only that kind's runs.
    only = set(sys.argv[2:])
    for kind, overrides in RUNS:
        if only and kind not in only:
            continue
        params = validate_training_spec(kind, overrides)
        reporter = MemoryReporter()
        outcome = train(kind, arrays, params, reporter)
        assert reporter.start is not None
        _, replicas, global_batch = reporter.start
        assert replicas == 2 and global_batch == 2 * params["batch_size"], reporter.start
        first, last = reporter.epochs[0][1], reporter.epochs[-1][1]
        if kind == "gan":
            assert all(v == v for v in last.values()), last  # finite, no NaN
        else:
            assert last["loss"] < first["loss"], (kind, first, last)
        if kind == "classifier":
            assert outcome.results["test_accuracy"] > 0.3
        if overrides.get("conditional"):
            assert "conditional_accuracy" in outcome.results, outcome.results
        if kind == "vae":
            assert outcome.results["prior"] == overrides.get("prior", "standard"), outcome.results
        with tempfile.TemporaryDirectory() as folder:
            [board] = [n for n in reporter.files if n.startswith("tensorboard/")]
            (Path(folder) / board.rsplit("/", 1)[-1]).write_bytes(reporter.files[board])
            run = read_run(Path(folder))
        tag = "d_loss" if kind == "gan" else "loss"
        assert run.steps(tag) == [step for step, _, _ in reporter.epochs], (kind, run.scalars)
        print(kind, "ok", {k: round(v, 4) for k, v in last.items()}, flush=True)


if __name__ == "__main__":
    main()
