#!/usr/bin/env bash
# The image's entrypoint: start.sh ROLE [extra arguments for that role's gentrain command]
#   api            wait for the database, migrate, serve on 0.0.0.0:8000
#   migrate        wait for the database, migrate, exit
#   worker-train   Celery worker for the "train" queue
#   worker-sample  Celery worker for the "sample" queue
# Anything else runs as a command, e.g. `docker compose run --rm api gentrain status`.
set -euo pipefail

# Retry until the database answers (GENTRAIN_DB_WAIT_SECONDS, default 60) or give up.
wait_for_database() {
    python - <<'PY'
import os, sys, time
from shared.db.session import ping
from shared.settings import get_settings

deadline = time.monotonic() + float(os.environ.get("GENTRAIN_DB_WAIT_SECONDS", "60"))
while True:
    try:
        ping(get_settings().database_url)
        break
    except Exception as error:
        if time.monotonic() > deadline:
            sys.exit(f"gentrain-start: database unreachable: {error}")
        print(f"gentrain-start: waiting for the database ({type(error).__name__})", file=sys.stderr)
        time.sleep(2)
PY
}

role="${1:-api}"
if [ "$#" -gt 0 ]; then shift; fi

case "$role" in
    api)
        wait_for_database
        gentrain db upgrade
        exec gentrain api --host 0.0.0.0 --port 8000 "$@"
        ;;
    migrate)
        wait_for_database
        exec gentrain db upgrade "$@"
        ;;
    worker-train)
        exec gentrain worker --queues train --name train "$@"
        ;;
    worker-sample)
        exec gentrain worker --queues sample --name sample "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
