#!/usr/bin/env python
"""The training engine against the seed's plain Keras scripts, side by side in one run.

Run from the repository root::

    .venv/bin/python bench/engine_vs_seed.py            # 4-5 min on 2 idle cores, ~9 if shared
    .venv/bin/python bench/engine_vs_seed.py --quick    # about 2 minutes, noisier

It measures, on ``tests/fixtures/mnist_5k.npz`` (4,000 training digits):

(a) training throughput (images/s) of the classifier, autoencoder and denoiser through
    ``workers.engine.training.train`` against the seed's ``model.fit`` on NumPy arrays
    (``bench/seed_scripts.py``), the two alternated run by run, first epoch (tracing) left out;
(b) the GAN: the engine's compiled ``train_step`` (steps/s) against the seed's Python loop run
    under Keras 2 semantics (``tf_keras``, ``TF_USE_LEGACY_KERAS=1``), and the engine under a
    one-device ``MirroredStrategy`` against the default strategy; each in its own process (the
    engine caches its strategy per process), rotated round by round;
(c) sampling: a 64-image GAN grid from a warm in-memory generator through
    ``workers.engine.sampling.sample_images``, and the one-time ``load_model`` of a saved one.

Every figure is a median; every ratio is taken between runs made next to each other. The CPU
time other processes take meanwhile is measured for every epoch or step: on a shared 2-core
machine it is the main source of noise. Samples taken while others used more than
``--max-foreign`` of the CPU are left out where enough quiet ones remain, pairs of runs under
unequal load are left out of the ratios, and CPU seconds per epoch or step are given beside wall
time. Figures and their reading: ``docs/engine-benchmarks.md``.

The seed's GAN needs ``tf_keras``: ``pip install --no-deps "tf-keras~=2.21.0"`` (with its
dependencies pip also installs the full ``tensorflow`` wheel over ``tensorflow-cpu``'s files);
without it that row is skipped with a reason.

Options: ``--parts a,b,c`` runs only some parts; ``--reps``, ``--epochs``, ``--rounds``,
``--gan-steps``, ``--gan-block`` size the runs; ``--json PATH`` writes the raw figures and
``--markdown PATH`` the tables.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

FIXTURE = ROOT / "tests" / "fixtures" / "mnist_5k.npz"
SEED_SCRIPTS = ROOT / "bench" / "seed_scripts.py"
DENSE_KINDS = ("classifier", "autoencoder", "denoiser")
TARGET_RATIO = 0.95
# Reference figures of ../shared/README.md (another machine of this kind).
REFERENCE = {"seed_gan_steps_s": 1.85, "engine_gan_steps_s": 2.8, "matmul_gflops": 210.0}
CHILD_TIMEOUT_S = 420


# ---------------------------------------------------------------- measuring the machine's load


def _busy_jiffies() -> tuple[int, int]:
    """(busy time, of which niced processes') since boot, in jiffies."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, fields[1]


def _own_cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class ForeignLoad:
    """CPU used by other processes: the machine's busy time minus ours. Niced processes count
    in full: with autogroup scheduling (``kernel.sched_autogroup_enabled=1``, as on this machine)
    a process at nice 19 started from another session takes a core as an equal, not leftovers."""

    def __init__(self) -> None:
        self.hz = os.sysconf("SC_CLK_TCK")
        self.cores = os.cpu_count() or 1
        self.reset()

    def reset(self) -> None:
        self._t0 = time.perf_counter()
        self._busy0, self._nice0 = _busy_jiffies()
        self._own0 = _own_cpu_seconds()

    def share(self) -> float:
        """Other processes' share of the machine's CPU since ``reset``."""
        elapsed = time.perf_counter() - self._t0
        busy, _ = _busy_jiffies()
        foreign = (busy - self._busy0) / self.hz - (_own_cpu_seconds() - self._own0)
        return max(0.0, foreign) / max(elapsed * self.cores, 1e-9)

    def niced_share(self) -> float:
        """Niced processes' share of the machine's CPU since ``reset`` (part of ``share``)."""
        elapsed = time.perf_counter() - self._t0
        _, nice = _busy_jiffies()
        return (nice - self._nice0) / self.hz / max(elapsed * self.cores, 1e-9)

    def own_seconds(self) -> float:
        """CPU seconds this process (and its waited-for children) used since ``reset``."""
        return _own_cpu_seconds() - self._own0


@contextmanager
def foreign_load(into: dict[str, float], name: str) -> Iterator[None]:
    """Records in ``into[name]`` the CPU share other processes took during the block (and in
    ``into[name + " niced"]`` that of niced ones)."""
    meter = ForeignLoad()
    yield
    into[name] = meter.share()
    into[f"{name} niced"] = meter.niced_share()


def wait_for_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Waits (at most ``max_wait`` s) for bench/api_load.py to end and for the CPU to be quiet;
    returns the foreign CPU share of the last 3-second sample."""
    deadline = time.monotonic() + max_wait
    share = 1.0
    while True:
        api_load = subprocess.run(
            ["pgrep", "-f", "bench/api_load.py"], capture_output=True, text=True
        ).stdout.strip()
        meter = ForeignLoad()
        time.sleep(3.0)
        share = meter.share()
        if not api_load and share < threshold:
            return share
        if time.monotonic() > deadline:
            print(
                f"warning: still busy after {max_wait:.0f} s (api_load running: {bool(api_load)},"
                f" other processes' CPU share {share:.0%}); measuring anyway",
                flush=True,
            )
            return share
        time.sleep(5.0)


def matmul_gflops() -> float:
    """The float32 matrix-product rate of this CPU now (median of 5 short timings)."""
    import tensorflow as tf

    a = tf.random.normal((1024, 1024))
    b = tf.random.normal((1024, 1024))
    tf.matmul(a, b).numpy()
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(10):
            c = tf.matmul(a, b)
        c.numpy()
        rates.append(10 * 2 * 1024**3 / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates)


# ---------------------------------------------------------------- (a) dense kinds, in-process


class TimingReporter:
    """An in-memory reporter (as tests' MemoryReporter) that keeps each epoch's seconds, the
    wall-clock time of each ``epoch_done`` call and other processes' CPU share in between."""

    attempt = 1

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.ends: list[float] = []
        self.foreign: list[float] = []
        self.cpu: list[float] = []
        self.values: list[dict[str, float]] = []
        self.files: dict[str, bytes] = {}
        self.start: tuple[int, int, int] | None = None
        self._meter = ForeignLoad()

    def started(self, param_count: int, replicas: int, global_batch_size: int) -> None:
        self.start = (param_count, replicas, global_batch_size)
        self.ends.append(time.perf_counter())
        self._meter.reset()

    def epoch_done(self, step, values, seconds, progress, eta) -> None:  # type: ignore[no-untyped-def]
        self.ends.append(time.perf_counter())
        self.foreign.append(self._meter.share())
        self.cpu.append(self._meter.own_seconds())
        self._meter.reset()
        self.seconds.append(seconds)
        self.values.append(values)

    def epoch_replayed(self, step, values, seconds, progress, eta) -> None:  # type: ignore[no-untyped-def]
        pass  # load_file finds no checkpoint: a benchmark job never resumes

    def should_stop(self) -> bool:
        return False

    def save_file(self, name: str, path: Path, content_type: str) -> None:
        self.files[name] = path.read_bytes()

    def save_bytes(self, name: str, data: bytes, content_type: str) -> None:
        self.files[name] = data

    def load_file(self, name: str, path: Path) -> bool:
        return False


def _walls(ends: list[float]) -> list[float]:
    """Seconds between consecutive epoch ends; ends[0] is the start of training."""
    return [b - a for a, b in zip(ends, ends[1:], strict=False)]


def samples(
    seconds: list[float], foreign: list[float], cpu: list[float], skip: int = 1
) -> list[list[float]]:
    """[seconds, other processes' CPU share, our CPU seconds] per sample, the first ``skip``
    (tracing, warm-up) left out."""
    return [[s, f, c] for s, f, c in zip(seconds, foreign, cpu, strict=True)][skip:]


def cpu_median(triples: list[list[float]]) -> float:
    """The median CPU seconds this process used per sample: less sensitive to other processes
    than wall time (they take cores away, not work)."""
    return statistics.median(c for _, _, c in triples)


def quiet_median(pairs: list[list[float]], max_foreign: float) -> tuple[float, int]:
    """The median seconds of the samples taken while other processes took at most
    ``max_foreign`` of the CPU (of all samples if fewer than 3 were that quiet), and how many
    quiet samples there were."""
    quiet = [s for s, f, _ in pairs if f <= max_foreign]
    chosen = quiet if len(quiet) >= 3 else [s for s, _, _ in pairs]
    return statistics.median(chosen), len(quiet)


def medians(groups: list[list[list[float]]], max_foreign: float) -> tuple[list[float], bool]:
    """The median seconds of each group of samples, taken alike for all groups: over the quiet
    samples if every group has at least 3, else over all samples (never quiet samples on one side
    against loaded ones on the other); and whether the quiet samples were used."""
    quiet = [[s for s, f, _ in group if f <= max_foreign] for group in groups]
    if all(len(q) >= 3 for q in quiet):
        return [statistics.median(q) for q in quiet], True
    return [statistics.median(s for s, _, _ in group) for group in groups], False


MAX_LOAD_GAP = 0.15


def pair_ratio(
    num: list[list[float]], den: list[list[float]], max_foreign: float
) -> tuple[float, bool]:
    """den/num median seconds (num's speed over den's) of two runs made next to each other, and
    whether they are comparable: other processes' median CPU share differed by at most
    ``MAX_LOAD_GAP`` between the two (a quiet run against a loaded one says nothing)."""
    (num_s, den_s), _ = medians([num, den], max_foreign)
    gap = abs(statistics.median(f for _, f, _ in num) - statistics.median(f for _, f, _ in den))
    return den_s / num_s, gap <= MAX_LOAD_GAP


def headline(ratios: list[tuple[float, bool]]) -> tuple[float, list[float], int]:
    """The median of the comparable pairs' ratios (of all if none is), all ratios, and how many
    pairs were left out as not comparable."""
    comparable = [r for r, ok in ratios if ok]
    chosen = comparable or [r for r, _ in ratios]
    return statistics.median(chosen), [r for r, _ in ratios], len(ratios) - len(comparable)


def train_images(kind: str, arrays: Any) -> int:
    """Images trained on per epoch (the classifier holds out its validation split)."""
    n = len(arrays.x_train)
    return n - int(n * 0.2) if kind == "classifier" else n


def run_engine(kind: str, arrays: Any, epochs: int) -> dict[str, Any]:
    """One training job of ``kind`` through the service's engine."""
    import keras

    from shared.job_specs import validate_training_spec
    from workers.engine.training import train

    keras.backend.clear_session()
    gc.collect()
    params = validate_training_spec(kind, {"epochs": epochs})
    reporter = TimingReporter()
    t0 = time.perf_counter()
    train(kind, arrays, params, reporter)
    total = time.perf_counter() - t0
    return {
        "epoch_s": samples(reporter.seconds, reporter.foreign, reporter.cpu),
        "wall_s": samples(_walls(reporter.ends), reporter.foreign, reporter.cpu),
        "total_s": total,
        "last": reporter.values[-1],
    }


def run_seed(kind: str, data: dict[str, Any], epochs: int) -> dict[str, Any]:
    """The seed's script for ``kind``: plain ``fit`` on NumPy arrays."""
    import keras
    import seed_scripts

    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(0)
    timer = seed_scripts.epoch_timer(keras, ForeignLoad())
    t0 = time.perf_counter()
    history = seed_scripts.SEED_FITS[kind](data, epochs, [timer])
    total = time.perf_counter() - t0
    return {
        "epoch_s": samples(timer.seconds, timer.foreign, timer.cpu),
        "wall_s": samples(_walls(timer.ends), timer.foreign, timer.cpu),
        "total_s": total,
        "last": {k: float(v[-1]) for k, v in history.history.items()},
    }


def part_a(
    kinds: list[str], reps: int, epochs: int, max_foreign: float, log: Callable[[str], None]
) -> dict:
    """Engine and seed, alternated run by run for each dense kind."""
    import seed_scripts

    from workers.engine.data import load_arrays

    arrays = load_arrays(FIXTURE)
    data = seed_scripts.load_digits(FIXTURE)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        k: {"engine": [], "seed": []} for k in kinds
    }
    for rep in range(reps):
        for i, kind in enumerate(kinds):
            order = ["engine", "seed"] if (rep + i) % 2 == 0 else ["seed", "engine"]
            for side in order:
                if side == "engine":
                    result = run_engine(kind, arrays, epochs)
                else:
                    result = run_seed(kind, data, epochs)
                runs[kind][side].append(result)
                epoch, quiet = quiet_median(result["epoch_s"], max_foreign)
                foreign = statistics.median(f for _, f, _ in result["epoch_s"])
                log(
                    f"  (a) rep {rep + 1}/{reps} {kind:<11} {side:<6} "
                    f"median epoch {epoch:.3f} s ({quiet}/{len(result['epoch_s'])} quiet epochs,"
                    f" foreign CPU {foreign:.0%}; {cpu_median(result['wall_s']):.3f} CPU-s)"
                )
    summary = {}
    for kind in kinds:
        images = train_images(kind, arrays)
        row: dict[str, Any] = {"images_per_epoch": images, "epochs": epochs, "reps": reps}
        for measure in ("epoch_s", "wall_s"):
            pooled = {
                side: [sample for run in runs[kind][side] for sample in run[measure]]
                for side in ("engine", "seed")
            }
            (engine_s, seed_s), used_quiet = medians(
                [pooled["engine"], pooled["seed"]], max_foreign
            )
            for side, seconds in (("engine", engine_s), ("seed", seed_s)):
                row[f"{side}_{measure}"] = seconds
                row[f"{side}_{measure}_images_s"] = images / seconds
                quiet = sum(1 for _, f, _ in pooled[side] if f <= max_foreign)
                row[f"{side}_{measure}_quiet"] = [quiet, len(pooled[side])]
            row[f"{measure}_used_quiet"] = used_quiet
            # Paired: each engine run against the seed run next to it; the headline ratio is
            # their median (runs next to each other saw about the same load).
            ratio, paired, left_out = headline(
                [
                    pair_ratio(e[measure], sd[measure], max_foreign)
                    for e, sd in zip(runs[kind]["engine"], runs[kind]["seed"], strict=True)
                ]
            )
            row[f"paired_{measure}"] = paired
            row[f"ratio_{measure}"] = ratio
            row[f"left_out_{measure}"] = left_out
        cpu = {side: [cpu_median(r["wall_s"]) for r in runs[kind][side]] for side in runs[kind]}
        row["engine_cpu_s"] = statistics.median(cpu["engine"])
        row["seed_cpu_s"] = statistics.median(cpu["seed"])
        row["paired_cpu"] = [s / e for e, s in zip(cpu["engine"], cpu["seed"], strict=True)]
        row["ratio_cpu"] = statistics.median(row["paired_cpu"])
        row["engine_total_s"] = statistics.median(r["total_s"] for r in runs[kind]["engine"])
        row["seed_total_s"] = statistics.median(r["total_s"] for r in runs[kind]["seed"])
        row["engine_last"] = runs[kind]["engine"][-1]["last"]
        row["seed_last"] = runs[kind]["seed"][-1]["last"]
        row["runs"] = runs[kind]
        summary[kind] = row
    return summary


# ---------------------------------------------------------------- (b) GAN, one process per run


def child_engine_gan(strategy: str, steps: int, block: int) -> dict[str, Any]:
    """The engine's GAN kind for ``steps`` steps in blocks of ``block`` (run in a child)."""
    from shared.job_specs import validate_training_spec
    from workers.engine import distribution, training
    from workers.engine.data import load_arrays

    if strategy == "mirrored":
        # train() asks make_strategy() for the worker's strategy; force one-device Mirrored.
        training.make_strategy = lambda: distribution.make_strategy(  # type: ignore[assignment]
            force_mirrored=True
        )
    # Per-step timings, as the seed's loop gives them: JobProgress already has a per-batch hook
    # (so fit's per-step behaviour is unchanged); this subclass also notes when each step ends.
    step_ends: list[tuple[int, float, float, float]] = []  # (batch, end, foreign, cpu)
    meter = ForeignLoad()

    class StepTimed(training.JobProgress):  # type: ignore[name-defined,misc]
        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            super().on_train_batch_end(batch, logs)
            step_ends.append((batch, time.perf_counter(), meter.share(), meter.own_seconds()))
            meter.reset()

    training.JobProgress = StepTimed  # type: ignore[misc]
    arrays = load_arrays(FIXTURE)
    params = validate_training_spec(
        "gan",
        {"steps": steps, "steps_per_epoch": block, "quality_samples": 0, "sample_every": 0},
    )
    reporter = TimingReporter()
    t0 = time.perf_counter()
    training.train("gan", arrays, params, reporter)
    total = time.perf_counter() - t0
    chosen = training.make_strategy()
    # A step's time: from the previous step's end, within a block (a block's first step also
    # holds the epoch's start and the previous block's checkpoint); the first block traces.
    step_s, step_foreign, step_cpu = [], [], []
    for (_, prev, _, _), (batch, end, foreign, cpu) in zip(step_ends, step_ends[1:], strict=False):
        if batch > 0:
            step_s.append(end - prev)
            step_foreign.append(foreign)
            step_cpu.append(cpu)
    skip = block - 1  # the steps of the first block that were timed
    return {
        "step_s": step_s[skip:],
        "step_foreign": step_foreign[skip:],
        "step_cpu": step_cpu[skip:],
        "block_s": reporter.seconds,
        "block_wall_s": _walls(reporter.ends),
        "foreign": reporter.foreign,
        "cpu": reporter.cpu,
        "block": block,
        "total_s": total,
        "strategy": type(chosen).__name__,
        "replicas": chosen.num_replicas_in_sync,
        "last": reporter.values[-1],
        "params": reporter.start[0] if reporter.start else None,
    }


def _run_child(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    raise RuntimeError(
        f"child {argv} failed (rc {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    )


def tf_keras_available() -> bool:
    """Whether the seed's Keras-2 baseline can run."""
    return importlib.util.find_spec("tf_keras") is not None


def part_b(
    rounds: int,
    steps: int,
    block: int,
    variants: list[str],
    max_foreign: float,
    log: Callable[[str], None],
) -> dict:
    """Seed loop (tf_keras), engine default strategy, engine one-device Mirrored; rotated."""
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    warmup_steps = 3
    for r in range(rounds):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for variant in order:
            if variant == "seed":
                raw = _run_child(
                    [str(SEED_SCRIPTS), "gan", str(steps + warmup_steps)],
                    {"TF_USE_LEGACY_KERAS": "1"},
                )
                pairs = samples(raw["step_seconds"], raw["foreign"], raw["cpu"], warmup_steps)
                step_s, quiet = quiet_median(pairs, max_foreign)
                quiet_steps = [
                    i
                    for i, f in enumerate(raw["foreign"])
                    if i >= warmup_steps and f <= max_foreign
                ]
                everything = range(warmup_steps, len(raw["step_seconds"]))
                chosen = quiet_steps if len(quiet_steps) >= 3 else everything
                result = {
                    "steps_s": 1.0 / step_s,
                    "wall_steps_s": 1.0 / step_s,
                    "cpu_s_per_step": cpu_median(pairs),
                    "quiet": [quiet, len(pairs)],
                    "parts_s": {
                        k: statistics.median(v[i] for i in chosen) for k, v in raw["parts"].items()
                    },
                    "discriminator_trained": raw["discriminator_trained"],
                    "params": raw["params"],
                    "keras": raw["keras"],
                    "raw": pairs,
                }
            else:
                strategy = variant.removeprefix("engine-")
                raw = _run_child(
                    [
                        str(Path(__file__)),
                        "--child",
                        "engine-gan",
                        "--strategy",
                        strategy,
                        "--gan-steps",
                        str(block * (-(-steps // block) + 1)),  # whole blocks, plus a first
                        "--gan-block",
                        str(block),
                    ]
                )
                steps_ = samples(raw["step_s"], raw["step_foreign"], raw["step_cpu"], 0)
                blocks = samples(raw["block_s"], raw["foreign"], raw["cpu"])
                walls = samples(raw["block_wall_s"], raw["foreign"], raw["cpu"])
                step_s, quiet = quiet_median(steps_, max_foreign)
                block_s, _ = quiet_median(blocks, max_foreign)
                wall_s, _ = quiet_median(walls, max_foreign)
                result = {
                    "steps_s": 1.0 / step_s,
                    # Blocks as reported to the job (incl. the step after a checkpoint), and
                    # the wall between reports (incl. the checkpoint itself).
                    "block_steps_s": block / block_s,
                    "wall_steps_s": block / wall_s,
                    "cpu_s_per_step": cpu_median(steps_),
                    "quiet": [quiet, len(steps_)],
                    # Seconds per block outside the measured epoch: the checkpoint, mostly.
                    "between_blocks_s": statistics.median(
                        w[0] - b[0] for w, b in zip(walls, blocks, strict=True)
                    ),
                    "strategy": raw["strategy"],
                    "replicas": raw["replicas"],
                    "params": raw["params"],
                    "last": raw["last"],
                    "raw": steps_,
                    "raw_blocks": blocks,
                }
            results[variant].append(result)
            foreign = statistics.median(f for _, f, _ in result["raw"])
            log(
                f"  (b) round {r + 1}/{rounds} {variant:<16} {result['steps_s']:.2f} steps/s"
                f" (with checkpoints {result['wall_steps_s']:.2f}; quiet samples"
                f" {result['quiet'][0]}/{result['quiet'][1]}, foreign CPU {foreign:.0%};"
                f" {result['cpu_s_per_step']:.2f} CPU-s/step)"
            )
    summary: dict[str, Any] = {"rounds": rounds, "steps": steps, "block": block, "runs": results}
    pooled = [[sample for run in results[v] for sample in run["raw"]] for v in variants]
    step_medians, used_quiet = medians(pooled, max_foreign)
    summary["used_quiet"] = used_quiet
    for variant, step_s in zip(variants, step_medians, strict=True):
        summary[variant] = 1.0 / step_s
        summary[f"{variant}_wall"] = statistics.median(r["wall_steps_s"] for r in results[variant])
        summary[f"{variant}_cpu"] = statistics.median(r["cpu_s_per_step"] for r in results[variant])

    def paired(num: str, den: str) -> dict[str, Any]:
        """num/den steps/s, round by round (runs of one round, if equally loaded)."""
        ratio, ratios, left_out = headline(
            [
                pair_ratio(a["raw"], b["raw"], max_foreign)
                for a, b in zip(results[num], results[den], strict=True)
            ]
        )
        return {"ratio": ratio, "rounds": ratios, "left_out": left_out}

    if "seed" in variants and "engine-default" in variants:
        summary["engine_vs_seed"] = paired("engine-default", "seed")
    if "engine-mirrored" in variants and "engine-default" in variants:
        summary["mirrored_vs_default"] = paired("engine-mirrored", "engine-default")
    return summary


# ---------------------------------------------------------------- (c) sampling, a fresh process


def child_sampling(model_path: Path, calls: int) -> dict[str, Any]:
    """Cold import and load, then warm sampling latency (run in a fresh child)."""
    t0 = time.perf_counter()
    import keras

    from workers.engine.kinds import KINDS, Gan
    from workers.engine.sampling import interpolation_strip, sample_images
    from workers.images import square_grid_png

    imported = time.perf_counter() - t0

    def timed(fn: Callable[[], Any]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def load() -> Any:
        return keras.models.load_model(model_path, safe_mode=True, compile=False)

    t0 = time.perf_counter()
    generator = load()
    cold_load = time.perf_counter() - t0
    params = {"count": 64, "seed": 0}
    first = timed(lambda: sample_images("gan", generator, None, params, {}))
    warm = [timed(lambda: sample_images("gan", generator, None, params, {})) for _ in range(calls)]
    kind = KINDS["gan"]
    assert isinstance(kind, Gan)
    images = kind.generate(generator, 64, 32, 0)
    generate = [timed(lambda: kind.generate(generator, 64, 32, 0)) for _ in range(calls)]
    png = [timed(lambda: square_grid_png(images)) for _ in range(calls)]
    strip = [timed(lambda: interpolation_strip(generator, 32, 0)) for _ in range(calls)]
    predict = [
        timed(lambda: generator.predict(images[:, :32], verbose=0)) for _ in range(min(calls, 5))
    ]
    reloads = [timed(load) for _ in range(5)]
    out = sample_images("gan", generator, None, params, {})
    return {
        "import_s": imported,
        "cold_load_s": cold_load,
        "first_call_s": first,
        "warm_call_s": statistics.median(warm),
        "warm_call_p90_s": sorted(warm)[int(0.9 * (len(warm) - 1))],
        "generate_64_s": statistics.median(generate),
        "grid_png_s": statistics.median(png),
        "interpolation_s": statistics.median(strip),
        "predict_64_s": statistics.median(predict),
        "reload_s": statistics.median(reloads),
        "png_bytes": {name: len(data) for name, data in out.items()},
        "calls": calls,
    }


def part_c(calls: int, log: Callable[[str], None]) -> dict:
    """Saves the engine's generator as a job would, then times loading and sampling it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        code = (
            "import sys; sys.path.insert(0, '.');"
            "from workers.engine.models import build_generator;"
            f"build_generator(32).save({str(path)!r}); print('RESULT {{}}')"
        )
        _run_child(["-c", code])
        size = path.stat().st_size
        result = _run_child(
            [
                str(Path(__file__)),
                "--child",
                "sampling",
                "--model",
                str(path),
                "--calls",
                str(calls),
            ]
        )
    result["model_bytes"] = size
    log(
        f"  (c) warm 64-image grid {result['warm_call_s'] * 1e3:.1f} ms,"
        f" cold load_model {result['cold_load_s'] * 1e3:.0f} ms"
    )
    return result


# ---------------------------------------------------------------- report


def _fmt_ratio(ratio: float, paired: list[float] | None = None, target: float | None = None) -> str:
    text = f"{ratio:.2f}"
    if paired and len(paired) > 1:
        text += f" ({min(paired):.2f}–{max(paired):.2f})"
    if target is not None:
        text += " ✓" if ratio >= target else " ✗"
    return text


def _left_out(count: int) -> str:
    return f" [{count} pair(s) left out: unequal load]" if count else ""


def markdown(report: dict[str, Any]) -> str:
    """The report's tables."""
    m = report["machine"]
    lines = [
        f"Machine: {m['cores']} cores ({m['cpu']}), Python {m['python']}, TensorFlow "
        f"{m['tensorflow']}, Keras {m['keras']}, tf_keras {m['tf_keras']}; float32 matmul "
        f"{m['matmul_gflops']:.0f} GFLOP/s (README reference machine: "
        f"{REFERENCE['matmul_gflops']:.0f}). Other processes' share of the CPU during each "
        "part (of which niced): "
        + ", ".join(
            f"({k}) {v:.0%} ({report['foreign_load'][k + ' niced']:.0%})"
            for k, v in report["foreign_load"].items()
            if not k.endswith(" niced")
        )
        + ".",
        "",
    ]
    if "a" in report:
        a = report["a"]
        lines += [
            "(a) Training throughput, engine (`train()`) against the seed's `model.fit`, "
            "first epoch of each run left out. images/s: from the median epoch time over the "
            f"quiet epochs (other processes took ≤ {report['max_foreign']:.0%} of the CPU) "
            "where both sides had at least 3 of them, else over all epochs of both. Ratio: "
            "engine/seed images/s, the median over pairs of runs made next to each other and "
            f"equally loaded (other processes' CPU share within {MAX_LOAD_GAP:.0%}; in brackets "
            f"the range over all pairs); target ≥ {TARGET_RATIO}. By CPU-seconds: seed/engine "
            "CPU seconds per epoch (less moved by other processes' load than wall time, but "
            "not immune: contention inflates it too).",
            "",
            "| kind | epochs × runs | quiet epochs seed / engine | seed images/s "
            "| engine images/s | ratio | ratio incl. checkpoint (wall between epochs) "
            "| ratio by CPU-seconds per epoch |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for kind, row in a.items():
            lines.append(
                f"| {kind} | {row['epochs']} × {row['reps']} "
                f"| {row['seed_epoch_s_quiet'][0]}/{row['seed_epoch_s_quiet'][1]} / "
                f"{row['engine_epoch_s_quiet'][0]}/{row['engine_epoch_s_quiet'][1]} "
                f"| {row['seed_epoch_s_images_s']:,.0f} | {row['engine_epoch_s_images_s']:,.0f} "
                f"| {_fmt_ratio(row['ratio_epoch_s'], row['paired_epoch_s'], TARGET_RATIO)}"
                f"{_left_out(row['left_out_epoch_s'])} "
                f"| {_fmt_ratio(row['ratio_wall_s'], row['paired_wall_s'], TARGET_RATIO)}"
                f"{_left_out(row['left_out_wall_s'])} "
                f"| {_fmt_ratio(row['ratio_cpu'], row['paired_cpu'], TARGET_RATIO)} |"
            )
        lines.append("")
    if "b" in report:
        b = report["b"]
        names = {
            "seed": "seed loop, Keras 2 (`tf_keras`): predict + 2× train_on_batch",
            "engine-default": "engine `train_step` under `fit`, default strategy",
            "engine-mirrored": "engine `train_step` under `fit`, MirroredStrategy (1 CPU)",
        }
        lines += [
            f"(b) GAN, batch 128, about {b['steps']} measured steps per run × {b['rounds']} "
            "rounds, each run in its own process. steps/s = 1 / median step time, over the quiet "
            "steps if every variant had at least 3, else over all (the seed's loop: its first 3 "
            "steps left out; the engine: each step timed by "
            f"a per-batch hook, in blocks of {b['block']} steps, the first block and each "
            'block\'s first step left out). "incl. checkpoints": from the wall time between '
            "blocks as reported to the job. CPU-s per step: CPU seconds the process used per step "
            "(less sensitive to other processes' load than wall time).",
            "",
            "| variant | quiet samples | steps/s | images/s | steps/s incl. checkpoints "
            "| CPU-s per step |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for variant, runs in b["runs"].items():
            quiet = sum(r["quiet"][0] for r in runs)
            total = sum(r["quiet"][1] for r in runs)
            lines.append(
                f"| {names[variant]} | {quiet}/{total} | {b[variant]:.2f} "
                f"| {b[variant] * 128:,.0f} | {b[variant + '_wall']:.2f} "
                f"| {b[variant + '_cpu']:.2f} |"
            )
        lines.append("")
        lines.append(
            "Ratios below: the median over rounds of the ratio between runs of the same round, "
            f"of the rounds where both saw about the same load (other processes' CPU share "
            f"within {MAX_LOAD_GAP:.0%}; in brackets the range over all rounds)."
        )
        if "engine_vs_seed" in b:
            pair = b["engine_vs_seed"]
            reference = REFERENCE["engine_gan_steps_s"] / REFERENCE["seed_gan_steps_s"]
            lines.append(
                f"Engine / seed loop: {_fmt_ratio(pair['ratio'], pair['rounds'])}"
                f"{_left_out(pair['left_out'])} (README "
                f"reference: {reference:.2f}); by CPU-seconds per step: "
                f"{b['seed_cpu'] / b['engine-default_cpu']:.2f}."
            )
        if "mirrored_vs_default" in b:
            pair = b["mirrored_vs_default"]
            lines.append(
                f"One-device MirroredStrategy / default strategy: "
                f"{_fmt_ratio(pair['ratio'], pair['rounds'])}{_left_out(pair['left_out'])}; "
                "by CPU-seconds per step: "
                f"{b['engine-default_cpu'] / b['engine-mirrored_cpu']:.2f}."
            )
        if "seed" in b["runs"]:
            parts = {
                k: statistics.median(r["parts_s"][k] for r in b["runs"]["seed"])
                for k in ("predict", "d_train", "a_train")
            }
            lines.append(
                "Seed loop per step: "
                + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in parts.items())
                + "."
            )
        if b.get("skipped"):
            lines.append(f"Skipped: {b['skipped']}")
        lines.append("")
    if "c" in report:
        c = report["c"]
        lines += [
            "(c) Sampling the GAN (a fresh process, generator saved by `Model.save`, "
            f"{c['model_bytes'] / 1e6:.1f} MB); medians of {c['calls']} calls.",
            "",
            "| what | ms |",
            "| --- | ---: |",
            f'| `sample_images("gan", …, count=64)` warm (grid + interpolation strip) '
            f"| {c['warm_call_s'] * 1e3:.1f} |",
            f"| … of which 64 images from the generator | {c['generate_64_s'] * 1e3:.1f} |",
            f"| … of which the 8×8 grid PNG | {c['grid_png_s'] * 1e3:.1f} |",
            f"| … of which the 10-image interpolation strip | {c['interpolation_s'] * 1e3:.1f} |",
            f"| first call after loading | {c['first_call_s'] * 1e3:.1f} |",
            f"| `load_model(path, safe_mode=True, compile=False)`, first in the process "
            f"| {c['cold_load_s'] * 1e3:.0f} |",
            f"| the same, again (warm) | {c['reload_s'] * 1e3:.0f} |",
            f"| importing Keras + the engine's sampling module | {c['import_s'] * 1e3:.0f} |",
            f"| for comparison: `generator.predict` of 64 | {c['predict_64_s'] * 1e3:.1f} |",
            "",
        ]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """The machine and the versions measured."""
    import keras
    import tensorflow as tf

    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    flags = Path("/proc/cpuinfo").read_text()
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags]
    try:
        from importlib.metadata import version

        tfk = version("tf_keras")
    except Exception:  # noqa: BLE001
        tfk = "not installed"
    return {
        "cores": os.cpu_count(),
        "cpu": f"{cpu}, {'/'.join(simd)}",
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf_keras": tfk,
        "matmul_gflops": matmul_gflops(),
    }


def main() -> None:
    """Run the parts asked for and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--parts", default="a,b,c", help="comma-separated: a, b, c")
    parser.add_argument("--quick", action="store_true", help="fewer runs (about 3 minutes)")
    parser.add_argument("--reps", type=int, default=3, help="(a) runs per kind and side")
    parser.add_argument("--epochs", type=int, default=8, help="(a) epochs per run")
    parser.add_argument("--kinds", default=",".join(DENSE_KINDS), help="(a) kinds")
    parser.add_argument("--rounds", type=int, default=2, help="(b) rounds of the GAN variants")
    parser.add_argument("--gan-steps", type=int, default=15, help="(b) measured steps per run")
    parser.add_argument("--gan-block", type=int, default=5, help="(b) engine steps per block")
    parser.add_argument("--no-mirrored", action="store_true", help="(b) skip MirroredStrategy")
    parser.add_argument("--calls", type=int, default=20, help="(c) sampling calls")
    parser.add_argument(
        "--max-foreign",
        type=float,
        default=0.10,
        help="drop samples taken while other processes used more of the CPU than this share",
    )
    parser.add_argument("--quiet-wait", type=float, default=120, help="max s to wait for quiet")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    parser.add_argument("--child", choices=["engine-gan", "sampling"], help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="default", help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "engine-gan":
        result = child_engine_gan(args.strategy, args.gan_steps, args.gan_block)
        print("RESULT " + json.dumps(result), flush=True)
        return
    if args.child == "sampling":
        print("RESULT " + json.dumps(child_sampling(args.model, args.calls)), flush=True)
        return
    if args.quick:
        args.reps, args.epochs, args.rounds, args.gan_steps, args.calls = 2, 5, 1, 10, 10

    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", flush=True)

    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    log("waiting for a quiet machine (no bench/api_load.py, little foreign CPU)")
    report: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "foreign_load": {},
        "max_foreign": args.max_foreign,
    }
    report["quiet_before"] = wait_for_quiet(args.quiet_wait)
    report["machine"] = machine()
    log(f"machine: {report['machine']}")
    if "a" in parts:
        with foreign_load(report["foreign_load"], "a"):
            kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
            report["a"] = part_a(kinds, args.reps, args.epochs, args.max_foreign, log)
    if "b" in parts:
        variants = ["seed", "engine-default"] + ([] if args.no_mirrored else ["engine-mirrored"])
        skipped = None
        if not tf_keras_available():
            variants.remove("seed")
            skipped = "the seed's loop: tf_keras is not installed (pip install --no-deps tf-keras)"
            log(f"  (b) skipped {skipped}")
        with foreign_load(report["foreign_load"], "b"):
            report["b"] = part_b(
                args.rounds, args.gan_steps, args.gan_block, variants, args.max_foreign, log
            )
        report["b"]["skipped"] = skipped
    if "c" in parts:
        with foreign_load(report["foreign_load"], "c"):
            report["c"] = part_c(args.calls, log)
    report["elapsed_s"] = time.perf_counter() - started
    text = markdown(report)
    print()
    print(text)
    log("done")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
