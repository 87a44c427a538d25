#!/usr/bin/env bash
# The image's entrypoint: start.sh ROLE [extra arguments for that role's gentrain command]
#   api            wait for the database, migrate, serve on 0.0.0.0:8000
#                  (GENTRAIN_MIGRATE_ON_START=0: wait for the schema instead of migrating, for
#                  when a separate migrate step owns it, as in deploy/k8s)
#   migrate        wait for the database, migrate, exit
#   wait-schema    wait until the database is at this image's latest migration, exit (an
#                  init container for pods that must not start before the migrate step)
#   worker-train   Celery worker for the "train" queue
#   worker-sample  Celery worker for the "sample" queue
#   reaper         re-queues jobs whose worker died, re-sends queued jobs the broker lost (run one)
# Anything else runs as a command, e.g. `docker compose run --rm api gentrain status`.
set -euo pipefail

# Retry until the database answers (GENTRAIN_DB_WAIT_SECONDS, default 60) or give up.
# With the argument "schema", also until its schema is at the newest migration of this image.
wait_for_database() {
    python - "${1:-}" <<'PY'
import os, sys, time
from shared.db.session import ping
from shared.settings import get_settings


def schema_is_current(url):
    """At this image's head; or at a revision this image does not know (a newer image migrated
    past it: go on, as after a rollback, rather than wait for a schema that will not come)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from shared.db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config(url))
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()
    if current == set(script.get_heads()):
        return True
    known = {revision.revision for revision in script.walk_revisions()}
    if current and not current & known:
        print(f"gentrain-start: schema {sorted(current)} is newer than this image", file=sys.stderr)
        return True
    return False


url = get_settings().database_url
deadline = time.monotonic() + float(os.environ.get("GENTRAIN_DB_WAIT_SECONDS", "60"))
while True:
    try:
        ping(url)
        if sys.argv[1] != "schema" or schema_is_current(url):
            break
        reason, detail = "schema not migrated yet", ""
    except Exception as error:
        reason, detail = type(error).__name__, f": {error}"
    if time.monotonic() > deadline:
        sys.exit(f"gentrain-start: gave up waiting for the database ({reason}){detail}")
    print(f"gentrain-start: waiting for the database ({reason})", file=sys.stderr)
    time.sleep(2)
PY
}

role="${1:-api}"
if [ "$#" -gt 0 ]; then shift; fi

case "$role" in
    api)
        if [ "${GENTRAIN_MIGRATE_ON_START:-1}" = "0" ]; then
            wait_for_database schema
        else
            wait_for_database
            gentrain db upgrade
        fi
        exec gentrain api --host 0.0.0.0 --port 8000 "$@"
        ;;
    migrate)
        wait_for_database
        exec gentrain db upgrade "$@"
        ;;
    wait-schema)
        wait_for_database schema
        ;;
    worker-train)
        exec gentrain worker --queues train --name train "$@"
        ;;
    worker-sample)
        exec gentrain worker --queues sample --name sample "$@"
        ;;
    reaper)
        exec gentrain reaper "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
