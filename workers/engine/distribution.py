"""The distribution strategy: MirroredStrategy over every GPU visible, one CPU replica otherwise."""

from __future__ import annotations

import tensorflow as tf


def make_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over all visible GPUs (or the CPU when there is none)."""
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
    cpus = tf.config.list_logical_devices("CPU")
    # With the CPU split into logical devices (tests), mirror over them; else one CPU replica.
    return tf.distribute.MirroredStrategy([cpu.name for cpu in cpus])
