#!/bin/sh
# `[minio] server DIR [--console-address ADDR]` (the compose file's command) serves S3 on :9000
# with moto; the credentials (MINIO_ROOT_USER, MINIO_ROOT_PASSWORD) are accepted, as moto takes
# any. Anything else runs as a command.
set -eu
if [ "${1:-}" = minio ]; then shift; fi
if [ "${1:-server}" = server ]; then
    exec /opt/moto/bin/moto_server -H 0.0.0.0 -p 9000
fi
exec "$@"
