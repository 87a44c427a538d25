"""Validate the rendered Kubernetes manifests of deploy/k8s (offline), for deploy/check.sh.

    kubectl kustomize deploy/k8s > rendered.yaml      # with secrets.env made from the example
    python deploy/k8s_check.py rendered.yaml [-k 1.29.0 -k 1.37.0]

1. Schemas: every object against the Kubernetes OpenAPI schemas bundled in the PyPI package
   kubernetes-validate (strict: unknown fields fail), and KEDA's ScaledObject against the small
   schema in deploy/k8s/schemas/. An object of any other kind fails: no schema, no pass.
2. Consistency with the code, which no schema knows: queue names (shared/queue.py), setting
   names (shared/settings.py), start.sh roles, probe paths (services/api/routes/health.py),
   and that KEDA reads the same Redis database that Celery uses.

Needs PyYAML, jsonschema and kubernetes-validate (deploy/install-checkers.sh installs them).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml
from kubernetes_validate import utils as kv

ROOT = Path(__file__).resolve().parent.parent
KEDA_SCHEMA = ROOT / "deploy/k8s/schemas/keda-scaledobject-v1alpha1.json"
# GENTRAIN_* variables that are not Settings fields: read by deploy/start.sh, by
# workers/celery_app.py, or (GENTRAIN_REDIS_ADDRESS) by KEDA only.
EXTRA_VARIABLES = {"REDIS_ADDRESS", "DB_WAIT_SECONDS", "MIGRATE_ON_START", "PRELOAD_TENSORFLOW"}


def code_facts() -> dict[str, set[str]]:
    """Names the manifests must agree with, read from the source without importing it."""
    queues: set[str] = set()
    for node in ast.parse((ROOT / "shared/queue.py").read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and any(isinstance(t, ast.Name) and t.id.endswith("_QUEUE") for t in node.targets)
        ):
            queues.add(str(node.value.value))
    settings: set[str] = set()
    for node in ast.walk(ast.parse((ROOT / "shared/settings.py").read_text())):
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    settings.add(item.target.id.upper())
    start = (ROOT / "deploy/start.sh").read_text()
    roles = set(re.findall(r"^ {4}([a-z][a-z-]*)\)$", start, re.MULTILINE))
    health = (ROOT / "services/api/routes/health.py").read_text()
    paths = set(re.findall(r"@bp\.get\(\"(/[a-z]+)\"\)", health))
    return {"queues": queues, "settings": settings, "roles": roles, "probe_paths": paths}


def schema_errors(doc: dict[str, Any], versions: list[str], keda: dict[str, Any]) -> list[str]:
    """Why ``doc`` does not match its schema (nothing when it does)."""
    if doc.get("apiVersion") == "keda.sh/v1alpha1" and doc.get("kind") == "ScaledObject":
        found = jsonschema.Draft202012Validator(keda).iter_errors(doc)
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in found]
    errors = []
    for version in versions:
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as error:
            path = ".".join(map(str, error.path))
            errors.append(f"Kubernetes {version}: {path}: {error.message}")
        except kv.SchemaNotFoundError as error:
            errors.append(error.message)
    return errors


def pod_templates(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] in {"Deployment", "Job"}
    ]


def scrape_errors(docs: list[dict[str, Any]]) -> list[str]:
    """Prometheus annotations name a port the pod serves; a worker's or the reaper's is the one
    its --metrics-port opens; the API's path is /metrics."""
    errors: list[str] = []
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        where = f"Deployment/{doc['metadata']['name']}"
        template = doc["spec"]["template"]
        notes = template.get("metadata", {}).get("annotations", {})
        if notes.get("prometheus.io/scrape") != "true":
            errors.append(f"{where}: no prometheus.io/scrape annotation")
            continue
        port = notes.get("prometheus.io/port", "")
        if notes.get("prometheus.io/path") != "/metrics":
            errors.append(f"{where}: prometheus.io/path must be /metrics")
        containers = template["spec"]["containers"]
        served = {str(p["containerPort"]) for c in containers for p in c.get("ports", [])}
        if port not in served:
            errors.append(f"{where}: prometheus.io/port {port!r} is no containerPort")
        for container in containers:
            args = container.get("args") or ["api"]
            if args[0] == "api":
                continue
            opened = args[args.index("--metrics-port") + 1] if "--metrics-port" in args else None
            if opened != port:
                errors.append(f"{where}: --metrics-port {opened} is not the annotated {port}")
    return errors


def consistency_errors(docs: list[dict[str, Any]], facts: dict[str, set[str]]) -> list[str]:
    """Disagreements between the manifests and the code (or among the manifests)."""
    errors: list[str] = []
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    configs = by_kind.get("ConfigMap", {})
    secrets = by_kind.get("Secret", {})
    config = {k: v for c in configs.values() for k, v in c.get("data", {}).items()}
    secret_keys = {k for s in secrets.values() for k in s.get("data", {})}

    variables = set(config) | secret_keys
    for _, pod in pod_templates(docs):
        for container in pod.get("initContainers", []) + pod["containers"]:
            variables |= {e["name"] for e in container.get("env", [])}
    for name in sorted(variables):
        short = name.removeprefix("GENTRAIN_")
        if name.startswith("GENTRAIN_") and short not in facts["settings"] | EXTRA_VARIABLES:
            errors.append(f"{name} is no setting of shared/settings.py")
    if "GENTRAIN_DATABASE_URL" in config:
        errors.append("GENTRAIN_DATABASE_URL holds a password: it belongs in the Secret")

    for where, pod in pod_templates(docs):
        if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
            errors.append(f"{where}: securityContext.runAsNonRoot must be true")
        for container in pod.get("initContainers", []) + pod["containers"]:
            name = f"{where} container {container['name']}"
            if container.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
                errors.append(f"{name}: allowPrivilegeEscalation must be false")
            role = (container.get("args") or ["api"])[0]
            if role not in facts["roles"]:
                errors.append(f"{name}: {role!r} is no role of deploy/start.sh")
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef") or {}
                known = configs if "configMapRef" in source else secrets
                if ref.get("name") not in known:
                    errors.append(f"{name}: envFrom refers to missing {ref.get('name')}")
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                path = container.get(probe, {}).get("httpGet", {}).get("path")
                if path is not None and path not in facts["probe_paths"]:
                    errors.append(f"{name}: {probe} path {path} is not served by the API")
            if role == "worker-train":
                gpus = container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
                if not gpus or int(gpus) < 1:
                    errors.append(f"{name}: a training worker needs an nvidia.com/gpu limit")

    errors += scrape_errors(docs)
    deployments = by_kind.get("Deployment", {})
    broker = urlsplit(config.get("GENTRAIN_BROKER_URL", ""))
    for name, scaled in by_kind.get("ScaledObject", {}).items():
        target = scaled["spec"]["scaleTargetRef"]["name"]
        if target not in deployments:
            errors.append(f"ScaledObject/{name}: no Deployment {target}")
        elif "replicas" in deployments[target]["spec"]:
            errors.append(f"Deployment/{target}: KEDA scales it, so it must not set replicas")
        for trigger in scaled["spec"]["triggers"]:
            meta = trigger["metadata"]
            if trigger["type"] != "redis":
                continue
            if meta.get("listName") not in facts["queues"]:
                errors.append(f"ScaledObject/{name}: {meta.get('listName')!r} is no Celery queue")
            if not meta.get("listLength", "").isdigit():
                errors.append(f"ScaledObject/{name}: listLength must be a whole number")
            address = meta.get("address") or config.get(meta.get("addressFromEnv", ""))
            if address is None:
                errors.append(f"ScaledObject/{name}: no Redis address (address/addressFromEnv)")
            elif broker.scheme.startswith("redis") and address != broker.netloc.split("@")[-1]:
                errors.append(f"ScaledObject/{name}: {address} is not the broker's Redis")
            database = (broker.path.strip("/") or "0") if broker.scheme else None
            if database is not None and meta.get("databaseIndex", "0") != database:
                errors.append(f"ScaledObject/{name}: databaseIndex is not the broker's {database}")
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rendered", type=Path, help="output of kubectl kustomize deploy/k8s")
    parser.add_argument("-k", "--kubernetes-version", action="append", dest="versions")
    args = parser.parse_args()
    versions = args.versions or ["1.29.0", kv.latest_version()]
    docs = [d for d in yaml.safe_load_all(args.rendered.read_text()) if d]
    keda = json.loads(KEDA_SCHEMA.read_text())
    errors = []
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        errors += [f"{where}: {e}" for e in schema_errors(doc, versions, keda)]
    if not errors:  # the consistency checks assume well-formed objects
        errors += consistency_errors(docs, code_facts())
    for error in errors:
        print(f"k8s_check: {error}", file=sys.stderr)
    if errors:
        return 1
    kinds = sorted({d["kind"] for d in docs})
    print(f"k8s: {len(docs)} objects ({', '.join(kinds)}) valid for Kubernetes {versions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
