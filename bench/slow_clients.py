#!/usr/bin/env python
"""Status reads a real ``gentrain api`` serves with and without slow clients holding connections.

Run from the repository root (needs what ``make test`` needs: PostgreSQL, Redis, and wrk)::

    .venv/bin/python bench/slow_clients.py [--slow 64] [--duration 10] [-- API ARGS...]

It starts the full stack of the e2e tests (fresh PostgreSQL database, moto S3, Redis database 14
unless GENTRAIN_TEST_REDIS says otherwise), ``gentrain api`` with keys required, then runs wrk
(1 thread, 8 connections) on an authenticated ``GET /v1/jobs/<id>`` twice: alone, and while
``--slow`` connections send partial request lines, headers and bodies a byte a second
(``tests/services/test_serving.py``'s ``SlowClients``). Extra arguments go to ``gentrain api``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from moto.server import ThreadedMotoServer  # noqa: E402

from shared.api_keys import create_key  # noqa: E402
from tests.conftest import REDIS_URL, create_test_job, free_port  # noqa: E402
from tests.e2e.stack import FullStack  # noqa: E402
from tests.services.test_serving import SlowClients  # noqa: E402


def wrk(url: str, key: str, seconds: int) -> tuple[float, str]:
    """Requests a second, and the latency line, of one wrk run."""
    out = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{seconds}s", "-H", f"Authorization: Bearer {key}", url],
        capture_output=True, text=True, check=True, timeout=seconds + 30,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    return rate, errors.group(0) if errors else "no errors"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("api_args", nargs="*")
    args = parser.parse_args()
    port = free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3.start()
    with tempfile.TemporaryDirectory() as root:
        stack = FullStack(Path(root), f"http://127.0.0.1:{port}", REDIS_URL, auth="required")
        try:
            stack.start("api", "api", *args.api_args)
            stack.wait_ready()
            _, key = create_key(stack.settings.database_url, "bench")
            url = (
                f"{stack.url}/v1/jobs/{create_test_job(stack.settings.database_url, owner='bench')}"
            )
            wrk(url, key, 2)  # warm-up
            alone = wrk(url, key, args.duration)
            with SlowClients(stack.settings.api_port, key, args.slow) as slow:
                time.sleep(1.0)
                held = wrk(url, key, args.duration)
            print(f"gentrain api {' '.join(args.api_args)}".strip())
            print(f"reads/s alone: {alone[0]:.0f} ({alone[1]})")
            print(f"reads/s with {args.slow} slow connections: {held[0]:.0f} ({held[1]})")
            print(f"slow connections dropped and re-opened (line, headers, body): {slow.reopened}")
        finally:
            stack.close()
            s3.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
