"""The Grafana dashboard and the Prometheus alerts (deploy/) ask only for metrics /metrics
serves: a renamed metric must not leave a blank panel or an alert that can never fire."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command

from tests.factories import propose_entry

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NAME = re.compile(r"\bhashsync_[a-z_]+")


def _served_names(client: Any) -> set[str]:
    text = client.get("/metrics").content.decode()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            names.add(name)
            if kind == "counter":
                names.add(name + "_total")
            if kind == "histogram":
                names.update(name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


def _asked_for() -> set[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "hashsync.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs += [str(rule["expr"]) for group in alerts["groups"] for rule in group["rules"]]
    return {name for expr in exprs for name in NAME.findall(expr)}


@pytest.mark.django_db
def test_every_metric_the_dashboard_and_alerts_use_is_served(client: Any, analyst: Any) -> None:
    propose_entry(analyst)  # a release-less, chain-ful world: every family is present
    call_command("audit_verify", stdout=io.StringIO())
    client.get("/healthz")
    asked = _asked_for()
    assert "hashsync_member_lag_seconds" in asked
    missing = asked - _served_names(client)
    assert not missing, f"not served by /metrics: {sorted(missing)}"
