"""Static checks of the monitoring setup: the Grafana dashboard and the Prometheus rules.

- The dashboard (deploy/grafana/dashboards/*.json) is a Grafana dashboard: a uid and title, panels
  with unique ids, a type, a place on the 24-column grid that overlaps no other, and queries on
  the provisioned Prometheus data source (its uid, deploy/grafana/provisioning/datasources).
- Every ``gentrain_*`` metric the dashboard and the alerting rules use is one the code exports
  (read from the source, not imported), so a renamed metric cannot leave a blank panel or an
  alert that never fires.
- ``--rules-out FILE`` writes each panel query as a recording rule, for ``promtool check rules``
  to parse the PromQL (deploy/check.sh does).

    python3 deploy/monitoring_check.py [--rules-out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "deploy/grafana/dashboards"
DATASOURCES = ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
# Where the metrics are defined: the API's (requests; database and broker at scrape time), the
# workers' and the reaper's.
SOURCES = (
    "services/api/metrics.py",
    "services/api/metrics_reads.py",
    "workers/metrics.py",
    "workers/reaper.py",
)
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum", "_created")
METRIC = re.compile(r"\bgentrain_[a-z_]+\b")
# Grafana's variables, as a fixed window for promtool.
VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def exported_metrics() -> set[str]:
    """Every name a scrape of gentrain can hold."""
    names: set[str] = set()
    for source in SOURCES:
        defined = re.findall(r"\"(gentrain_[a-z_]+)\"", (ROOT / source).read_text())
        names |= {name + suffix for name in defined for suffix in SUFFIXES}
    return names


def used_metrics(expr: str) -> set[str]:
    return set(METRIC.findall(expr))


def dashboard_errors(path: Path, datasource_uid: str, exported: set[str]) -> list[str]:
    errors: list[str] = []
    board: dict[str, Any] = json.loads(path.read_text())
    for field in ("uid", "title", "panels", "schemaVersion"):
        if not board.get(field):
            errors.append(f"{path.name}: no {field}")
    ids: set[int] = set()
    cells: dict[tuple[int, int], int] = {}
    for panel in board.get("panels", []):
        where = f"{path.name} panel {panel.get('id')} {panel.get('title')!r}"
        if not isinstance(panel.get("id"), int) or panel["id"] in ids:
            errors.append(f"{where}: missing or repeated id")
        ids.add(panel.get("id", -1))
        if not panel.get("type") or not panel.get("title"):
            errors.append(f"{where}: needs a type and a title")
        grid = panel.get("gridPos", {})
        x, y, w, h = (grid.get(key) for key in ("x", "y", "w", "h"))
        if not all(isinstance(v, int) for v in (x, y, w, h)) or x < 0 or w < 1 or x + w > 24:
            errors.append(f"{where}: gridPos must lie within the 24 columns")
            continue
        for cell in ((col, row) for col in range(x, x + w) for row in range(y, y + h)):
            if cell in cells:
                errors.append(f"{where}: overlaps panel {cells[cell]}")
                break
            cells[cell] = panel["id"]
        targets = panel.get("targets") or []
        if not targets:
            errors.append(f"{where}: no queries")
        for target in targets:
            source = target.get("datasource") or panel.get("datasource") or {}
            if source.get("uid") != datasource_uid:
                errors.append(f"{where}: data source {source} is not {datasource_uid}")
            expr = target.get("expr", "")
            if not expr:
                errors.append(f"{where}: a query without expr")
            for name in sorted(used_metrics(expr) - exported):
                errors.append(f"{where}: {name} is not exported by gentrain")
    return errors


def alert_errors(exported: set[str]) -> list[str]:
    errors: list[str] = []
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            for name in sorted(used_metrics(rule["expr"]) - exported):
                errors.append(f"alert {rule.get('alert')}: {name} is not exported by gentrain")
            if "summary" not in rule.get("annotations", {}):
                errors.append(f"alert {rule.get('alert')}: no summary annotation")
    return errors


def panel_rules(paths: list[Path]) -> dict[str, Any]:
    """Each panel query as a recording rule (Grafana's variables filled in)."""
    rules = []
    for path in paths:
        for panel in json.loads(path.read_text()).get("panels", []):
            for target in panel.get("targets", []):
                expr = target.get("expr", "")
                for variable, value in VARIABLES.items():
                    expr = expr.replace(variable, value)
                record = f"dashboard:panel{panel['id']}:{target.get('refId', 'A').lower()}"
                rules.append({"record": record, "expr": expr})
    return {"groups": [{"name": "dashboard-queries", "rules": rules}]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules-out", type=Path, help="write the panel queries as rules here")
    args = parser.parse_args()
    datasources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    uid = next(d["uid"] for d in datasources if d["type"] == "prometheus")
    exported = exported_metrics()
    boards = sorted(DASHBOARDS.glob("*.json"))
    errors = [] if boards else ["no dashboard in deploy/grafana/dashboards"]
    for board in boards:
        errors += dashboard_errors(board, uid, exported)
    errors += alert_errors(exported)
    if args.rules_out:
        args.rules_out.write_text(yaml.safe_dump(panel_rules(boards), sort_keys=False))
    for error in errors:
        print(f"monitoring_check: {error}", file=sys.stderr)
    if not errors:
        print(f"monitoring checks passed ({len(boards)} dashboard(s), alerts, {uid})")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
