#!/usr/bin/env bash
# CI only: the images the compose smoke test runs on where no container registry is reachable.
#   gentrain-ci/debian:bookworm   debootstrap --variant=minbase, with this machine's CA bundle
#   gentrain-ci/python:3.11       Debian's Python 3.11 (deploy/Dockerfile's PYTHON_IMAGE)
#   gentrain-ci/postgres:15, gentrain-ci/redis:7, gentrain-ci/s3:moto, gentrain-ci/prometheus:2
#                                 stand-ins for the official postgres, redis, minio/mc and
#                                 prom/prometheus images (Grafana has no Debian package: the
#                                 CI override leaves that service out)
# An image already on this machine is reused (the base when its recipe is unchanged; the others
# through Docker's layer cache). Needs root, dockerd running and debootstrap.
set -euo pipefail
cd "$(dirname "$0")"

base=gentrain-ci/debian:bookworm
ca_bundle=/etc/ssl/certs/ca-certificates.crt
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Rebuilt when this changes: the recipe below, or the CA bundle the builds must trust.
recipe="minbase-bookworm-v2-$(sha256sum "$ca_bundle" | cut -c1-16)"

if [ "$(docker image inspect -f '{{index .Config.Labels "gentrain.recipe"}}' "$base" 2> /dev/null)" != "$recipe" ]; then
    echo "build-images: $base (debootstrap, about a minute)"
    root="$(mktemp -d /tmp/gentrain-ci-rootfs.XXXXXX)"
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase bookworm "$root" "$mirror" > "$root.log" 2>&1 || {
        tail -n 20 "$root.log" >&2
        echo "build-images: debootstrap failed (log above)" >&2
        exit 1
    }
    rm -f "$root.log"
    install -D -m 0644 "$ca_bundle" "$root/etc/ssl/certs/ca-certificates.crt"
    # Also as a local CA, so that the bundle Debian's ca-certificates regenerates when a later
    # package pulls it in keeps what this machine trusts.
    install -D -m 0644 "$ca_bundle" "$root/usr/local/share/ca-certificates/build-host.crt"
    # No service starts during a package's installation in an image build.
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
    tar -C "$root" -c . | docker import \
        --change "LABEL gentrain.recipe=$recipe" \
        --change "ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive" \
        --change 'CMD ["bash"]' - "$base" > /dev/null
fi

build() {  # build TAG DIR [docker build options]
    local tag="$1" dir="$2"
    shift 2
    echo "build-images: $tag"
    local log
    log="$(mktemp)"
    if ! docker build --network host --build-arg "BASE_IMAGE=$base" "$@" -t "$tag" "$dir" > "$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        echo "build-images: building $tag failed (output above)" >&2
        return 1
    fi
    rm -f "$log"
}
# `build-images.sh base`: the base and Python only (what deploy/Dockerfile needs), so that the
# stand-ins (`build-images.sh stand-ins`) can build beside the project's image.
if [ "${1:-all}" != stand-ins ]; then
    build gentrain-ci/python:3.11 python
fi
if [ "${1:-all}" = base ]; then
    exit 0
fi
build gentrain-ci/postgres:15 postgres
build gentrain-ci/redis:7 redis
build gentrain-ci/s3:moto s3 --build-arg PYTHON_IMAGE=gentrain-ci/python:3.11
build gentrain-ci/prometheus:2 prometheus
