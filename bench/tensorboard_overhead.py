#!/usr/bin/env python
"""What writing TensorBoard files costs a training job: the same classifier job with and without
them, run by run, through the worker's own path (``workers.runner.run_training_job``: claim,
train, every upload through the reporter under the job's lease, finish).

    .venv/bin/python bench/tensorboard_overhead.py                 # PostgreSQL + moto S3, ~4 min
    .venv/bin/python bench/tensorboard_overhead.py --embedded      # SQLite + local directory
    .venv/bin/python bench/tensorboard_overhead.py --rounds 2 --epochs 5

"Without" is the same code with TensorBoard reported missing (``tensorboard_available``), the
path a worker without TensorBoard takes: no event file, no upload. Rounds alternate the order
(with, without; then without, with) after one warm-up job of each. Per job it gives the wall
time of ``run_training_job``, this process's CPU seconds, the share of the CPU other processes
took meanwhile, and the seconds spent inside ``TensorBoardLog`` (writing summaries; flushing and
uploading), which other processes' load moves far less than wall time. Needs PostgreSQL on
127.0.0.1 (``GENTRAIN_TEST_PG``) unless ``--embedded``. Figures: ``docs/engine-benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402
from engine_vs_seed import ForeignLoad  # noqa: E402

from shared.dataset_registry import register_dataset, upload_limits  # noqa: E402
from shared.db.migrate import upgrade  # noqa: E402
from shared.db.session import session_scope  # noqa: E402
from shared.job_specs import validate_training_spec  # noqa: E402
from shared.jobs import NewJob, create_job  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.storage import open_store  # noqa: E402
from tests.conftest import FIXTURES, PG_ADMIN_URL, free_port  # noqa: E402


@contextmanager
def full_stack(root: Path) -> Iterator[Settings]:
    """A fresh PostgreSQL database and a moto S3 server on loopback; both gone afterwards."""
    from moto.server import ThreadedMotoServer

    name = f"gentrain_tb_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto.start()
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield Settings(
            data_dir=root / "data",
            database_url=f"{base}/{name}",
            s3_bucket=f"tb-{uuid.uuid4().hex[:10]}",
            s3_endpoint_url=f"http://127.0.0.1:{port}",
            s3_access_key_id="test",
            s3_secret_access_key="test",
        )
    finally:
        from shared.db.session import get_engine

        get_engine(f"{base}/{name}").dispose()
        moto.stop()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Inside:
    """Seconds spent inside TensorBoardLog's methods, and its uploads (patched in place)."""

    def __init__(self) -> None:
        from workers.engine import tensorboard_log

        self.module = tensorboard_log
        self.seconds: dict[str, float] = {}
        self.uploads = 0
        for method in ("record", "image", "upload"):
            self._wrap(method)
        save = tensorboard_log.TensorBoardLog.upload

        def counted(board: Any) -> None:
            before = board._uploaded_size
            save(board)
            self.uploads += board._uploaded_size != before

        tensorboard_log.TensorBoardLog.upload = counted  # type: ignore[method-assign]

    def _wrap(self, method: str) -> None:
        cls = self.module.TensorBoardLog
        original: Callable[..., Any] = getattr(cls, method)

        def timed(board: Any, *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(board, *args)
            finally:
                elapsed = time.perf_counter() - started
                self.seconds[method] = self.seconds.get(method, 0.0) + elapsed

        setattr(cls, method, timed)

    def reset(self) -> None:
        self.seconds, self.uploads = {}, 0

    def enabled(self, on: bool) -> None:
        """With TensorBoard files, or as on a worker without TensorBoard installed."""
        self.module.tensorboard_available = lambda: on


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_job(settings: Settings, dataset_id: str, params: dict[str, Any]) -> str:
    """Create a queued classifier job and run it as a worker would; its id."""
    from workers.runner import RunResult, run_training_job

    with session_scope(settings.database_url) as session:
        job_id = create_job(session, NewJob("classifier", "classifier", "", params, dataset_id))
    assert run_training_job(settings, job_id, "bench") is RunResult.FINISHED
    return job_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedded", action="store_true", help="SQLite and a local directory")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--sample-every", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="write the raw figures here")
    args = parser.parse_args()
    params = validate_training_spec(
        "classifier", {"epochs": args.epochs, "sample_every": args.sample_every}
    )
    inside = Inside()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        embedded = nullcontext(Settings(data_dir=root / "data"))
        with embedded if args.embedded else full_stack(root) as settings:
            upgrade(settings.database_url)
            data = (FIXTURES / "mnist_5k.npz").read_bytes()
            limits = upload_limits(settings)
            dataset = register_dataset(
                settings.database_url, open_store(settings), "mnist", data, limits
            )
            order = [True, False]  # warm-up: one of each, not counted
            for r in range(args.rounds):
                order += [True, False] if r % 2 == 0 else [False, True]
            for index, on in enumerate(order):
                inside.enabled(on)
                inside.reset()
                meter, cpu0, started = ForeignLoad(), _cpu(), time.perf_counter()
                run_job(settings, dataset.id, params)
                row = {
                    "tensorboard": on,
                    "warmup": index < 2,
                    "wall_s": time.perf_counter() - started,
                    "cpu_s": _cpu() - cpu0,
                    "others_cpu_share": meter.share(),
                    "inside_s": dict(inside.seconds),
                    "uploads": inside.uploads,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    counted = [r for r in rows if not r["warmup"]]

    def median(on: bool, key: str) -> float:
        return statistics.median(r[key] for r in counted if r["tensorboard"] is on)

    pairs = [
        (counted[i], counted[i + 1]) for i in range(0, len(counted) - 1, 2)
    ]  # each round's two jobs, next to each other
    ratios = [
        (a if a["tensorboard"] else b)["wall_s"] / (b if a["tensorboard"] else a)["wall_s"]
        for a, b in pairs
    ]
    inside_totals = [sum(r["inside_s"].values()) for r in counted if r["tensorboard"]]
    summary = {
        "stack": "embedded" if args.embedded else "postgresql+s3",
        "params": {"epochs": args.epochs, "sample_every": args.sample_every},
        "rounds": args.rounds,
        "wall_s_with": median(True, "wall_s"),
        "wall_s_without": median(False, "wall_s"),
        "cpu_s_with": median(True, "cpu_s"),
        "cpu_s_without": median(False, "cpu_s"),
        "wall_ratio_per_round": ratios,
        "wall_ratio_median": statistics.median(ratios),
        "inside_tensorboard_s_median": statistics.median(inside_totals),
        "uploads_per_job": [r["uploads"] for r in counted if r["tensorboard"]],
        "others_cpu_share_max": max(r["others_cpu_share"] for r in counted),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
