#!/usr/bin/env bash
# make compose-smoke: build the image with deploy/Dockerfile, bring docker-compose.yml up (on the
# CI stand-ins of deploy/ci/docker-compose.ci.yml), wait for every healthcheck, follow the
# README's compose quickstart as a user would (key, upload, 2-epoch autoencoder, grid through the
# presigned redirect, samples), then kill the training worker mid-job (the job must resume and
# succeed) and restart Redis (its AOF must keep the queued jobs). Tears down with `down -v`.
#
# Needs root (it installs docker.io, docker-compose and debootstrap when missing, and starts
# dockerd when none runs; it stops the dockerd it started). A hard limit of
# COMPOSE_SMOKE_TIMEOUT seconds (default 900) covers all of it, cleanup aside.
# Published ports 8000, 9000, 9001, 5555 and 9090 on 127.0.0.1 must be free.
set -euo pipefail
cd "$(dirname "$0")/../.."

limit="${COMPOSE_SMOKE_TIMEOUT:-900}"
if [ -z "${GENTRAIN_SMOKE_CHILD:-}" ]; then
    # timeout signals the whole process group; the cleanup trap then has 240 s before KILL.
    export GENTRAIN_SMOKE_CHILD=1
    exec timeout --kill-after=240 "$limit" bash "$0" "$@"
fi

export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-gentrain-smoke}"
export COMPOSE_FILE=docker-compose.yml:deploy/ci/docker-compose.ci.yml
export GENTRAIN_IMAGE=gentrain:local
BASE=http://localhost:8000
started=$SECONDS
step_name="start"
work="$(mktemp -d /tmp/gentrain-smoke.XXXXXX)"
dockerd_pid=""
key_file=""
services=""
stack_up=""
env_backup=""

say() { echo "compose-smoke [$((SECONDS - started))s]: $*"; }
step() { step_name="$1"; say "== $1"; }
fail() {
    echo "compose-smoke: FAILED at '$step_name': $*" >&2
    exit 1
}

# --- diagnosis: every message names the service --------------------------------------------
service_logs() {  # service_logs SERVICE [LINES]
    echo "---- last log lines of service $1 ----" >&2
    docker-compose logs --no-color --tail="${2:-25}" "$1" >&2 2> /dev/null || true
}

# One line per service: "SERVICE STATE" where STATE is ok, starting, or a failure description.
service_states() {
    local svc cid state
    for svc in $services; do
        cid="$(docker-compose ps -q "$svc" 2> /dev/null | head -n 1)"
        if [ -z "$cid" ]; then
            echo "$svc not-created"
            continue
        fi
        state="$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}} {{.RestartCount}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$cid")"
        # shellcheck disable=SC2086
        set -- $state
        local status="$1" code="$2" policy="$3" restarts="$4" health="$5"
        if [ "$policy" = "no" ]; then  # a one-shot step (migrate, minio-init)
            case "$status" in
                exited) [ "$code" = 0 ] && echo "$svc ok" || echo "$svc exited-with-$code" ;;
                *) echo "$svc starting" ;;
            esac
        elif [ "$status" != running ]; then
            echo "$svc $status-exit-$code-after-$restarts-restarts"
        elif [ "$restarts" != 0 ]; then
            echo "$svc restarted-$restarts-times"
        else
            case "$health" in
                healthy | none) echo "$svc ok" ;;
                starting) echo "$svc starting" ;;
                *) echo "$svc $health" ;;
            esac
        fi
    done
}

health_output() {  # the last healthcheck output of a service's container
    local cid
    cid="$(docker-compose ps -q "$1" 2> /dev/null | head -n 1)"
    [ -n "$cid" ] || return 0
    docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}{{.Output}}{{end}}{{end}}' "$cid" 2> /dev/null |
        tail -n 5 || true
}

wait_healthy() {  # wait_healthy SECONDS [SERVICE...]: all ok, or fail naming those that are not
    local deadline=$((SECONDS + $1)) states bad pending wanted
    wanted="${*:2}"
    while true; do
        states="$(service_states)"
        if [ -n "$wanted" ]; then
            states="$(awk -v want=" $wanted " 'index(want, " " $1 " ")' <<< "$states")"
        fi
        bad="$(grep -v -E ' (ok|starting|not-created)$' <<< "$states" || true)"
        pending="$(grep -E ' (starting|not-created)$' <<< "$states" || true)"
        if [ -z "$bad" ] && [ -z "$pending" ]; then
            say "every service healthy: $(tr '\n' ' ' <<< "$states")"
            return 0
        fi
        if [ -n "$bad" ] || [ "$SECONDS" -ge "$deadline" ]; then
            [ -n "$bad" ] || bad="${pending// starting/ still-starting-after-$1s}"
            while read -r svc what; do
                [ "$what" != not-created ] || continue
                service_logs "$svc"
                echo "---- healthcheck of service $svc: $(health_output "$svc" | tr '\n' ' ')" >&2
            done <<< "$bad"
            waiting="$(grep ' not-created$' <<< "$pending" | cut -d' ' -f1 | tr '\n' ' ' || true)"
            fail "service(s) not healthy: $(grep -v ' not-created$' <<< "$bad" | tr '\n' ';' | sed 's/;$//; s/;/; /g')${waiting:+ (so never started: $waiting)}"
        fi
        sleep 3
    done
}

# --- cleanup, on success and failure ---------------------------------------------------------
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$rc" != 0 ] && [ -n "$stack_up" ]; then
        echo "compose-smoke: service states at failure:" >&2
        service_states | sed 's/^/  /' >&2 || true
    fi
    if [ -n "$stack_up" ]; then
        mkdir -p test-artifacts
        docker-compose logs --no-color --timestamps > test-artifacts/compose-smoke.log 2>&1 || true
        say "every service's log: test-artifacts/compose-smoke.log; tearing down (down -v)"
        docker-compose down -v --remove-orphans -t 30 > "$work/down.log" 2>&1 ||
            { cat "$work/down.log" >&2; echo "compose-smoke: docker-compose down -v failed" >&2; rc=1; }
    fi
    rm -f .env
    if [ -n "$key_file" ]; then rm -f "$key_file"; fi
    if [ -n "$env_backup" ]; then mv "$env_backup" .env; fi
    if [ -n "$dockerd_pid" ]; then
        say "stopping the dockerd it started (pid $dockerd_pid)"
        kill "$dockerd_pid" 2> /dev/null || true
        for _ in $(seq 60); do kill -0 "$dockerd_pid" 2> /dev/null || break; sleep 1; done
    fi
    rm -rf "$work"
    if [ "$rc" = 0 ]; then
        say "PASSED in $((SECONDS - started)) s"
    else
        echo "compose-smoke: FAILED (exit $rc) during '$step_name' after $((SECONDS - started)) s" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "compose-smoke: interrupted (timeout of ${limit}s or a signal) during $step_name" >&2; exit 124' INT TERM

# --- tools and the engine ----------------------------------------------------------------------
step "tools"
missing=()
command -v dockerd > /dev/null || missing+=(docker.io)
command -v docker-compose > /dev/null || missing+=(docker-compose)
command -v debootstrap > /dev/null || missing+=(debootstrap)
command -v curl > /dev/null || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > "$work/apt.log" 2>&1 ||
        { tail -n 20 "$work/apt.log" >&2; fail "apt-get install ${missing[*]} failed"; }
fi
if ! docker info > /dev/null 2>&1; then
    say "no Docker engine answers: starting dockerd"
    # Its own session, so that the timeout's signal to this group leaves it to the cleanup.
    setsid dockerd > "$work/dockerd.log" 2>&1 < /dev/null &
    dockerd_pid=$!
    for _ in $(seq 60); do docker info > /dev/null 2>&1 && break; sleep 1; done
    docker info > /dev/null 2>&1 || { tail -n 20 "$work/dockerd.log" >&2; fail "dockerd did not start"; }
fi
for port in 8000 9000 9001 5555 9090; do
    if (: < "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
        fail "port $port on 127.0.0.1 is taken; the stack publishes it"
    fi
done

# A stack of this project left by an earlier run (a dockerd restart brings it back): remove it.
if [ -n "$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")" ]; then
    say "removing a stack left by an earlier run"
    touch .env.smoke-empty
    docker-compose --env-file .env.smoke-empty down -v --remove-orphans -t 10 > /dev/null 2>&1 || true
    rm -f .env.smoke-empty
fi

# --- images ------------------------------------------------------------------------------------
step "base images"
bash deploy/ci/build-images.sh base
step "gentrain image (deploy/Dockerfile), and the stand-ins beside it"
bash deploy/ci/build-images.sh stand-ins > "$work/stand-ins.log" 2>&1 &
stand_ins=$!
if ! docker build --network host --build-arg PYTHON_IMAGE=gentrain-ci/python:3.11 \
    -f deploy/Dockerfile -t "$GENTRAIN_IMAGE" . > "$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    wait "$stand_ins" || true
    fail "docker build -f deploy/Dockerfile failed (output above)"
fi
say "gentrain image built"
wait "$stand_ins" || { cat "$work/stand-ins.log" >&2; fail "building the stand-in images failed"; }
cat "$work/stand-ins.log"

# --- the README's compose section, as a user follows it --------------------------------------
step "docker-compose up"
if [ -e .env ]; then
    env_backup="$(mktemp .env.smoke-backup.XXXXXX)"
    mv .env "$env_backup"
fi
cp .env.example .env
sed -i -e "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=smoke-$RANDOM$RANDOM/" \
    -e "s/^MINIO_ROOT_PASSWORD=.*/MINIO_ROOT_PASSWORD=smoke-$RANDOM$RANDOM/" \
    -e "s/^FLOWER_BASIC_AUTH=.*/FLOWER_BASIC_AUTH=ops:smoke-$RANDOM/" \
    -e "s/^GRAFANA_ADMIN_PASSWORD=.*/GRAFANA_ADMIN_PASSWORD=smoke-$RANDOM/" .env
# The services compose starts: those of no profile (the CI override puts Grafana in one).
services="$(docker-compose config | python3 -c 'import sys, yaml
services = yaml.safe_load(sys.stdin)["services"]
print(" ".join(name for name, svc in services.items() if not svc.get("profiles")))')"
# Prometheus reads the API key from a compose secret file that must exist; it is filled below.
key_file=""
if grep -q prometheus-api-key docker-compose.yml && [ ! -e prometheus-api-key ]; then
    key_file=prometheus-api-key
    : > "$key_file"
fi
stack_up=1
# up -d fails when a dependency's healthcheck fails; the states below name the service.
docker-compose up -d > "$work/up.log" 2>&1 || { cat "$work/up.log" >&2; say "docker-compose up -d failed"; }
step "healthchecks"
wait_healthy 240

api() {  # api METHOD PATH [curl options]: the JSON body, failing on a non-2xx answer
    local method="$1" path="$2"
    shift 2
    curl -fsS -X "$method" -H "Authorization: Bearer $KEY" "$@" "$BASE$path" ||
        fail "$method $path failed (service api)"
}
field() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval("d" + sys.argv[1]))' "$1"; }

wait_job() {  # wait_job ID SECONDS [STATUS]: poll until it ends; fail unless it succeeded
    local id="$1" deadline=$((SECONDS + $2)) job status
    while true; do
        job="$(api GET "/v1/jobs/$id")"
        status="$(field '["status"]' <<< "$job")"
        case "$status" in
            succeeded) return 0 ;;
            failed | cancelled)
                echo "$job" >&2
                service_logs worker-train 40
                service_logs worker-sample 20
                fail "job $id $status (service worker-train or worker-sample, see above)"
                ;;
        esac
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "$job" >&2
            service_logs worker-train 40
            fail "job $id still $status after $2 s (service worker-train or worker-sample)"
        fi
        sleep 2
    done
}

step "quickstart: key, upload, 2-epoch autoencoder"
KEY="$(docker-compose exec -T api gentrain keys create alice | tail -n 1 | tr -d '\r')"
[[ "$KEY" == gt_* ]] || fail "gentrain keys create printed no key (service api): $KEY"
if [ -n "$key_file" ]; then  # Prometheus's admin key for the API's /metrics, as the README says
    docker-compose exec -T api gentrain keys create prometheus --admin | tail -n 1 > "$key_file"
    docker-compose restart prometheus > /dev/null 2>&1
fi
api POST /v1/datasets -F file=@tests/fixtures/mnist_5k.npz -F name=mnist > /dev/null
JOB="$(api POST /v1/jobs -H 'Content-Type: application/json' \
    -d '{"kind": "autoencoder", "dataset": "mnist", "params": {"epochs": 2}}' | field '["id"]')"
wait_job "$JOB" 300
api GET "/v1/jobs/$JOB/metrics" > /dev/null
say "job $JOB succeeded: $(api GET "/v1/jobs/$JOB" | field '["results"]')"

step "quickstart: the grid through the presigned redirect"
grid="/v1/jobs/$JOB/artifacts/samples/reconstructions.png"
location="$(curl -sS -o /dev/null -w '%{redirect_url}' -H "Authorization: Bearer $KEY" "$BASE$grid")"
[[ "$location" == http://localhost:9000/* ]] ||
    fail "the grid does not redirect to S3 on localhost:9000 (service api): '$location'"
curl -fsSL -H "Authorization: Bearer $KEY" -o "$work/grid.png" "$BASE$grid" ||
    fail "download through the presigned link failed (service minio)"
[ "$(head -c 8 "$work/grid.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "the downloaded grid is not a PNG (service minio)"
say "grid: $(wc -c < "$work/grid.png") bytes of PNG from $location"

step "quickstart: samples on the sampling worker"
SAMPLE="$(api POST "/v1/jobs/$JOB/samples" -H 'Content-Type: application/json' \
    -d '{"params": {"count": 16}}' | field '["id"]')"
wait_job "$SAMPLE" 180
curl -fsSL -H "Authorization: Bearer $KEY" -o "$work/samples.png" \
    "$BASE/v1/jobs/$SAMPLE/artifacts/samples/grid.png" || fail "sample grid download failed (service minio)"
api GET "/v1/jobs/$SAMPLE/logs" | grep -q "on worker sample@" ||
    fail "sampling job $SAMPLE did not run on service worker-sample: $(api GET "/v1/jobs/$SAMPLE/logs" | head -c 600)"
say "sampling job $SAMPLE succeeded on worker-sample"

step "kill the training worker mid-job"
LONG="$(api POST /v1/jobs -H 'Content-Type: application/json' \
    -d '{"kind": "autoencoder", "dataset": "mnist", "params": {"epochs": 60}}' | field '["id"]')"
deadline=$((SECONDS + 240))
while true; do
    job="$(api GET "/v1/jobs/$LONG")"
    progress="$(field '["progress"]' <<< "$job")"
    if [ "$(field '["status"]' <<< "$job")" = running ] &&
        python3 -c 'import sys; sys.exit(float(sys.argv[1]) < 0.1)' "$progress"; then
        break
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "job $LONG did not reach 10 % (service worker-train): $job"
    sleep 1
done
say "job $LONG at progress $progress: docker kill (SIGKILL) of worker-train"
docker kill "$(docker-compose ps -q worker-train)" > /dev/null
# `docker kill` counts as stopped by hand for the restart policy: start it, as an operator would.
sleep 2
docker-compose up -d --no-deps worker-train > /dev/null 2>&1
# The reaper re-queues the job once its heartbeat is GENTRAIN_HEARTBEAT_TIMEOUT_SECONDS old.
wait_job "$LONG" 420
attempts="$(api GET "/v1/jobs/$LONG" | field '["attempts"]')"
[ "$attempts" -ge 2 ] || fail "job $LONG succeeded in $attempts attempt(s): it never resumed (service reaper)"
say "job $LONG resumed and succeeded (attempts: $attempts)"

step "restart Redis: queued jobs survive in its AOF"
docker-compose stop -t 60 worker-train > /dev/null 2>&1
Q1="$(api POST /v1/jobs -H 'Content-Type: application/json' \
    -d '{"kind": "autoencoder", "dataset": "mnist", "params": {"epochs": 1}}' | field '["id"]')"
Q2="$(api POST /v1/jobs -H 'Content-Type: application/json' \
    -d '{"kind": "autoencoder", "dataset": "mnist", "params": {"epochs": 1}}' | field '["id"]')"
queued() { docker-compose exec -T redis redis-cli llen train | tr -d '\r'; }
before="$(queued)"
[ "$before" -ge 2 ] || fail "the train queue holds $before messages, not 2 (service redis)"
docker-compose restart -t 30 redis > /dev/null 2>&1
wait_healthy 120 redis
after="$(queued)"
[ "$after" = "$before" ] || fail "the train queue held $before messages before the restart, $after after (service redis)"
say "train queue: $before messages before and after the restart"
docker-compose up -d --no-deps worker-train > /dev/null 2>&1
wait_job "$Q1" 300
wait_job "$Q2" 300
say "both queued jobs succeeded after the Redis restart"

step "every service still healthy"
# worker-train was started again above: running, its first healthcheck 60 s away (seen healthy
# at the start); every other service must be healthy now.
# shellcheck disable=SC2046  # one argument per service
wait_healthy 120 $(tr ' ' '\n' <<< "$services" | grep -v -x worker-train)
state="$(service_states | grep '^worker-train ')"
[[ "$state" =~ \ (ok|starting)$ ]] || fail "service worker-train: $state"
if [ -n "$key_file" ]; then
    step "Prometheus scrapes every target"
    # worker-train restarted moments ago: its target may not have been scraped since.
    targets="$(curl -fsS http://localhost:9090/api/v1/targets)" || fail "service prometheus does not answer"
    down="$(python3 -c 'import json, sys
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    if t["health"] != "up" and not t["labels"]["instance"].startswith("worker-train:"):
        print(t["labels"]["job"], t["labels"]["instance"], t["health"], t.get("lastError", ""))' <<< "$targets")"
    [ -z "$down" ] || fail "service prometheus: targets not up: $down"
    say "Prometheus: every target up"
fi
step "done"
