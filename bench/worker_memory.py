"""Peak memory of a worker's job on a huge-but-tiny upload against the same job on 100 images.

    .venv/bin/python bench/worker_memory.py                      # 660,000 images, this tree
    .venv/bin/python bench/worker_memory.py --code /tmp/old --splits train   # `git archive` tree
    .venv/bin/python bench/worker_memory.py --images 200000 --kinds denoiser

Builds two datasets with numpy (streamed into the zip, never whole in memory): ``big``, whose
``x_train`` and ``x_test`` each declare N × 784 uint8 zeros (a ~1 MB upload per 660,000 images),
and ``small`` with 100 images in each split. Then, for each kind, runs in a fresh child process
a training job with ``max_train_images: 100`` and 1 epoch (``workers.engine`` as the worker runs
it: ``load_arrays`` then ``train``), and a sampling job of 16 images (the worker's loading, then
``sample_images``), and reads the child's peak resident memory (``VmHWM``; the parent's
``RUSAGE_CHILDREN`` ``ru_maxrss`` agrees). The figure is big ÷ small; issue 10 asks for ≤ 2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("autoencoder", "denoiser", "classifier", "gan")
JOB_PARAMS: dict[str, dict[str, Any]] = {
    "autoencoder": {"epochs": 1},
    "denoiser": {"epochs": 1},
    "classifier": {"epochs": 1},
    "gan": {"steps": 1, "steps_per_epoch": 1, "batch_size": 50, "quality_samples": 100},
}
_CHUNK_ROWS = 20_000


def _write_zeros(archive: zipfile.ZipFile, name: str, shape: tuple[int, ...]) -> None:
    """An NPY member of uint8 zeros, written a block at a time."""
    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
        header = {"descr": "|u1", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(member, header)
        per_row = int(np.prod(shape[1:]))
        zeros = bytes(_CHUNK_ROWS * per_row)
        for start in range(0, shape[0], _CHUNK_ROWS):
            member.write(zeros[: min(_CHUNK_ROWS, shape[0] - start) * per_row])


def build_dataset(path: Path, images: int, splits: tuple[str, ...] = ("train", "test")) -> Path:
    """An .npz of ``images`` zero digits (and labels) in each split, as an upload would be."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for split in splits:
            _write_zeros(archive, f"x_{split}", (images, 28, 28))
            _write_zeros(archive, f"y_{split}", (images,))
    return path


def _peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class _Reporter:
    """Keeps nothing: the engine's reporter, minus a job."""

    attempt = 1

    def started(self, *_: Any) -> None: ...
    def epoch_done(self, *_: Any) -> None: ...
    def epoch_replayed(self, *_: Any) -> None: ...
    def should_stop(self) -> bool:
        return False

    def save_file(self, *_: Any) -> None: ...
    def save_bytes(self, *_: Any) -> None: ...
    def load_file(self, *_: Any) -> bool:
        return False


def child(job: str, kind: str, path: Path) -> dict[str, Any]:
    """Run one job the way a worker does, in this process; what it cost."""
    from shared.job_specs import validate_sample_params, validate_training_spec
    from workers.engine import data

    params = validate_training_spec(kind, {**JOB_PARAMS[kind], "max_train_images": 100})
    if job == "train":
        from workers.engine.training import train

        arrays = data.load_arrays(path, params["max_train_images"])
        outcome = train(kind, arrays, params, _Reporter())
        detail: dict[str, Any] = {"results": outcome.results}
    else:
        from workers.engine.kinds import KINDS as ENGINE_KINDS
        from workers.engine.sampling import needs_dataset, sample_images

        model = ENGINE_KINDS[kind].build(params).export
        sample = validate_sample_params({"count": 16, "seed": 0}, kind)
        images: Any = None
        if needs_dataset(kind):
            if hasattr(data, "load_drawn"):
                images = data.load_drawn(path, sample["count"], sample["seed"])
            else:  # the code before issue 10 loaded the whole dataset
                images = data.load_arrays(path)
        detail = {"files": sorted(sample_images(kind, model, images, sample, params))}
    return {"peak_mib": round(_peak_kib() / 1024, 1), **detail}


def measure(code: Path, job: str, kind: str, path: Path) -> dict[str, Any]:
    """Run ``child`` in a fresh process on the tree ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", job, kind, str(path)]
    done = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = done.stderr[-3000:]
        raise RuntimeError(f"{job} {kind} on {path.name}: exit {done.returncode}\n{tail}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def compare(
    code: Path,
    kinds: list[str],
    jobs: list[str],
    images: int,
    folder: Path,
    splits: tuple[str, ...],
) -> list[dict]:
    """Big ÷ small peak memory for each job and kind."""
    big = build_dataset(folder / "big.npz", images, splits)
    small = build_dataset(folder / "small.npz", 100, splits)
    rows = []
    for job in jobs:
        for kind in kinds:
            if job == "sample" and kind == "gan":
                continue  # the GAN samples without its dataset
            on_big = measure(code, job, kind, big)
            on_small = measure(code, job, kind, small)
            ratio = on_big["peak_mib"] / on_small["peak_mib"]
            rows.append(
                {
                    "job": job,
                    "kind": kind,
                    "big_mib": on_big["peak_mib"],
                    "small_mib": on_small["peak_mib"],
                    "ratio": round(ratio, 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=660_000)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--jobs", default="train,sample")
    parser.add_argument(
        "--splits",
        default="train,test",
        help="splits the datasets have: train,test (both huge) or train (issue 10's upload)",
    )
    parser.add_argument("--code", type=Path, default=ROOT, help="tree whose workers/ to run")
    parser.add_argument("--child", nargs=3, metavar=("JOB", "KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job, kind, path = args.child
        print(json.dumps(child(job, kind, Path(path))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp)
        splits = tuple(args.splits.split(","))
        code, kinds, jobs = args.code.resolve(), args.kinds.split(","), args.jobs.split(",")
        rows = compare(code, kinds, jobs, args.images, big, splits)
    size = {"images": args.images, "splits": args.splits, "code": str(args.code)}
    print(json.dumps({**size, "worst_ratio": max(row["ratio"] for row in rows)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
