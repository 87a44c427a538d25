"""Run by test_checkpoints: restore a checkpoint in a fresh process under two replicas.

Splits the CPU into 2 logical devices (before TensorFlow initialises, hence a separate process),
builds the kind inside MirroredStrategy, restores ``argv[2]``, prints every restored variable's
sum by key as JSON, and saves the restored state to ``argv[3]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

sys.path.insert(0, str(Path(__file__).parents[2]))
import numpy as np  # noqa: E402

from shared.job_specs import validate_training_spec  # noqa: E402
from workers.engine.checkpoints import (  # noqa: E402
    EpochRecord,
    checkpoint_variables,
    restore_checkpoint,
    save_checkpoint,
)
from workers.engine.distribution import make_strategy  # noqa: E402
from workers.engine.kinds import KINDS  # noqa: E402


def main() -> None:
    """Restore, report, save again."""
    kind, source, target = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    strategy = make_strategy()
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        built = KINDS[kind].build(validate_training_spec(kind, {}))
    epoch, record = restore_checkpoint(source, built.model, built.optimizers)
    sums = {
        key: float(np.sum(np.asarray(variable.numpy(), dtype=np.float64)))
        for key, variable in checkpoint_variables(built.model, built.optimizers).items()
    }
    print(json.dumps({"replicas": 2, "epoch": epoch, "step": record.step, "sums": sums}))
    save_checkpoint(target, built.model, built.optimizers, epoch, EpochRecord(**record.__dict__))


if __name__ == "__main__":
    main()
