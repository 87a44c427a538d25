"""The distribution strategy: MirroredStrategy over every GPU visible (or every logical CPU when
the CPU is split, as in tests); a single device trains under the default strategy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Literal

import keras
import tensorflow as tf


def training_devices() -> list[str]:
    """The devices a job trains on: every GPU, else every logical CPU."""
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus or tf.config.list_logical_devices("CPU")
    return [device.name for device in devices]


def runtime_summary() -> str:
    """TensorFlow's and Keras's versions and the devices this process sees (for a job's log)."""
    devices = ", ".join(d.name.removeprefix("/device:") for d in tf.config.list_logical_devices())
    return f"TensorFlow {tf.__version__}, Keras {keras.__version__}; devices: {devices or 'none'}"


@lru_cache(maxsize=2)
def make_strategy(force_mirrored: bool = False) -> tf.distribute.Strategy:
    """MirroredStrategy over the training devices when there are several; one per process.

    With one device, MirroredStrategy only adds cost (it slowed the GAN's steps on this CPU:
    docs/engine-benchmarks.md), so a lone device uses the default strategy unless forced.
    The strategy is made once and reused by every job of the worker process: a second
    MirroredStrategy in the same process reuses collective-op keys and fails its first
    all-reduce ("Shape mismatch in the collective instance").
    """
    devices = training_devices()
    if len(devices) > 1 or force_mirrored:
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def jit_compile_setting() -> bool | Literal["auto"]:
    """XLA off on CPU-only machines (it made the GAN step several times slower on this CPU:
    docs/engine-benchmarks.md), Keras's choice on GPUs."""
    return "auto" if tf.config.list_logical_devices("GPU") else False


def mixed_policy_name() -> str:
    """The mixed-precision policy for this machine: float16 on GPUs, bfloat16 on CPUs."""
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


@contextmanager
def dtype_policy(mixed: bool) -> Iterator[str]:
    """Layers built inside use the mixed policy when ``mixed`` (else float32); reset afterwards."""
    name = mixed_policy_name() if mixed else "float32"
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy("float32")
