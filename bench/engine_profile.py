#!/usr/bin/env python
"""Where a dense kind's epoch goes: the engine against the seed, one difference at a time.

Run from the repository root::

    .venv/bin/python bench/engine_profile.py classifier      # about 1 minute

For one kind it alternates, run by run, in one process:

* ``seed``: the seed's ``model.fit`` on NumPy arrays (``bench/seed_scripts.py``);
* ``engine``: the service's ``train()`` (the figure ``bench/engine_vs_seed.py`` reports);
* ``engine-fit``: the engine's compiled model and its ``tf.data`` pipelines (``Kind.plan``) under
  a bare ``fit``: no job callbacks, no checkpoints;
* ``engine-model-numpy``: the engine's compiled model fed NumPy arrays as the seed feeds them;
* ``engine-pipeline-vectorised``: the engine's model fed a ``tf.data`` pipeline that shuffles
  indices and gathers whole batches (what Keras does for NumPy input) instead of shuffling and
  batching element by element.

Each figure is the median seconds of an epoch (training + validation, first epoch left out), and
the training part alone (``on_test_begin`` → end subtracted).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine_vs_seed import FIXTURE, ForeignLoad, TimingReporter, wait_for_quiet  # noqa: E402


def timer(keras: Any) -> Any:
    """Per-epoch seconds, and the validation seconds within each epoch."""

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.validation: list[float] = []
            self.cpu: list[float] = []
            self._meter = ForeignLoad()
            self._began = 0.0
            self._test = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._began = time.perf_counter()
            self._test = 0.0
            self._meter.reset()

        def on_test_begin(self, logs: Any = None) -> None:
            self._test = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            now = time.perf_counter()
            self.seconds.append(now - self._began)
            self.validation.append(now - self._test if self._test else 0.0)
            self.cpu.append(self._meter.own_seconds())

    return Timer()


def vectorised(x: Any, y: Any, batch: int, seed: int) -> Any:
    """Shuffle indices (cheap scalars) and gather whole batches, as Keras's NumPy adapter does,
    instead of shuffling and batching the images element by element."""
    import tensorflow as tf

    x, y = tf.constant(x), tf.constant(y)
    indices = tf.data.Dataset.range(int(x.shape[0]))
    indices = indices.shuffle(int(x.shape[0]), seed=seed, reshuffle_each_iteration=True)
    return (
        indices.batch(batch)
        .map(lambda i: (tf.gather(x, i), tf.gather(y, i)), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def run(variant: str, kind_name: str, epochs: int) -> tuple[list[float], list[float], list[float]]:
    """(epoch seconds, training-only seconds, CPU seconds) after the first epoch, one run."""
    import keras
    import numpy as np
    import seed_scripts

    from shared.job_specs import validate_training_spec
    from workers.engine.data import load_arrays
    from workers.engine.kinds import KINDS
    from workers.engine.training import train

    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(0)
    params = validate_training_spec(kind_name, {"epochs": epochs})
    arrays = load_arrays(FIXTURE)
    if variant == "engine":
        reporter = TimingReporter()
        train(kind_name, arrays, params, reporter)
        return reporter.seconds[1:], [float("nan")] * (epochs - 1), reporter.cpu[1:]
    t = timer(keras)
    if variant == "seed":
        seed_scripts.SEED_FITS[kind_name](seed_scripts.load_digits(FIXTURE), epochs, [t])
    else:
        kind = KINDS[kind_name]
        built = kind.build(params)
        batch = params["batch_size"]
        if kind_name == "classifier":
            cut = len(arrays.x_train) - int(len(arrays.x_train) * params["validation_split"])
            x, y = arrays.x_train[:cut], arrays.y_train
            assert y is not None
            y, val = y[:cut], (arrays.x_train[cut:], y[cut:])
        else:
            inputs = getattr(kind, "inputs")  # noqa: B009
            x, y = inputs(arrays.x_train, params, params["seed"]), arrays.x_train
            assert arrays.x_test is not None
            val = (inputs(arrays.x_test, params, params["seed"] + 1), arrays.x_test)
        if variant == "engine-fit":
            plan = kind.plan(arrays, params, batch)
            built.model.fit(
                plan.train, validation_data=plan.validation, epochs=epochs, callbacks=[t], verbose=0
            )
        elif variant == "engine-model-numpy":
            built.model.fit(
                x, y, batch_size=batch, epochs=epochs, validation_data=val, callbacks=[t], verbose=0
            )
        elif variant == "engine-pipeline-vectorised":
            train_ds = vectorised(np.asarray(x), np.asarray(y), batch, params["seed"])
            val_ds = vectorised(val[0], val[1], batch, 0)
            built.model.fit(
                train_ds, validation_data=val_ds, epochs=epochs, callbacks=[t], verbose=0
            )
        else:
            raise ValueError(variant)
    training = [s - v for s, v in zip(t.seconds, t.validation, strict=True)]
    return t.seconds[1:], training[1:], t.cpu[1:]


VARIANTS = ["seed", "engine", "engine-fit", "engine-model-numpy", "engine-pipeline-vectorised"]


def main() -> None:
    """Alternate the variants and print a table of medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("kind", choices=["classifier", "autoencoder", "denoiser"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--quiet-wait", type=float, default=60)
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    wait_for_quiet(args.quiet_wait)
    epoch_s: dict[str, list[float]] = {v: [] for v in variants}
    train_s: dict[str, list[float]] = {v: [] for v in variants}
    cpu_s: dict[str, list[float]] = {v: [] for v in variants}
    for rep in range(args.reps):
        shift = rep % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            seconds, trained, cpu = run(variant, args.kind, args.epochs)
            epoch_s[variant] += seconds
            train_s[variant] += trained
            cpu_s[variant] += cpu
            print(f"rep {rep + 1} {variant:<28} {statistics.median(seconds):.3f} s", flush=True)
    seed = statistics.median(epoch_s["seed"]) if "seed" in epoch_s else None
    print(f"\n{args.kind}: median seconds per epoch (after the first), {args.reps} runs each\n")
    seed_cpu = statistics.median(cpu_s["seed"]) if "seed" in cpu_s else None
    print("| variant | epoch s | training part s | CPU-s per epoch | seed/variant (wall; CPU) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for variant in variants:
        median = statistics.median(epoch_s[variant])
        training = statistics.median(train_s[variant])
        cpu_median = statistics.median(cpu_s[variant])
        ratio = f"{seed / median:.2f}; {seed_cpu / cpu_median:.2f}" if seed and seed_cpu else "–"
        print(f"| {variant} | {median:.3f} | {training:.3f} | {cpu_median:.3f} | {ratio} |")


if __name__ == "__main__":
    main()
