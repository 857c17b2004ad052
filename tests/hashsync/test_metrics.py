"""/metrics: who may read it, what the request counters are labelled with, and the
scrape-time collectors of curation and the audit trail. (Member lag and the sync counters:
tests/sync/test_metrics.py.)"""

from __future__ import annotations

import io
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from hashsync import metrics
from tests.factories import propose_entry
from tests.utils import assert_error

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "synthetic-metrics-token-" + "m" * 16


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of an exposition, or None when it is absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, label_text = series.partition("{")
        found = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if metric == name and found == wanted:
            return float(value)
    return None


def scrape(client: Any, **headers: Any) -> str:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


@pytest.mark.django_db
def test_metrics_are_open_in_development_without_a_token(client: Any) -> None:
    text = scrape(client)
    assert "hashsync_http_requests_total" in text


@pytest.mark.django_db
def test_metrics_need_the_bearer_token_when_one_is_set(client: Any, settings: Any) -> None:
    settings.HASHSYNC_METRICS_TOKEN = TOKEN
    error = assert_error(client.get("/metrics"), 401, "authentication_failed")
    assert TOKEN not in str(error)
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + TOKEN[:-1] + "x")
    assert_error(wrong, 401, "authentication_failed")
    assert wrong["WWW-Authenticate"].startswith("Bearer")
    assert_error(client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}"), 401)
    scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


@pytest.mark.django_db
def test_metrics_do_not_exist_in_production_without_a_token(client: Any, settings: Any) -> None:
    settings.PRODUCTION = True
    settings.HASHSYNC_METRICS_TOKEN = None
    assert client.get("/metrics").status_code == 404
    settings.HASHSYNC_METRICS_TOKEN = TOKEN
    scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def test_a_short_metrics_token_refuses_to_start() -> None:
    env = {**os.environ, "HASHSYNC_METRICS_TOKEN": "too-short", "HASHSYNC_ENV": "development"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "hashsync.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "HASHSYNC_METRICS_TOKEN must be at least 24 characters" in result.stderr


@pytest.mark.django_db
def test_requests_are_counted_by_route_name_and_status_class_never_by_path(client: Any) -> None:
    before = scrape(client)
    previous = sample(
        before, "hashsync_http_requests_total", route="health", method="GET", status="2xx"
    )
    client.get("/healthz")
    unknown = f"/no-such-page-{secrets.token_hex(8)}/"
    client.get(unknown)
    api_unknown = f"/api/v1/no-such-thing-{secrets.token_hex(8)}/"
    client.get(api_unknown)
    text = scrape(client)
    assert (
        sample(text, "hashsync_http_requests_total", route="health", method="GET", status="2xx")
        == (previous or 0) + 1
    )
    assert sample(
        text, "hashsync_http_requests_total", route="unmatched", method="GET", status="4xx"
    )
    assert unknown.strip("/") not in text
    assert api_unknown.strip("/").split("/")[-1] not in text
    assert sample(text, "hashsync_http_request_duration_seconds_count", route="health")


@pytest.mark.django_db
def test_the_review_queue_is_read_at_scrape_time(client: Any, analyst: Any) -> None:
    assert sample(scrape(client), "hashsync_review_queue_depth") == 0
    propose_entry(analyst)
    propose_entry(analyst)
    text = scrape(client)
    assert sample(text, "hashsync_review_queue_depth") == 2
    oldest = sample(text, "hashsync_review_queue_oldest_seconds")
    assert oldest is not None and oldest >= 0
    assert sample(text, "hashsync_import_backlog", status="staged") == 0


@pytest.mark.django_db
def test_audit_verify_records_its_result_for_the_metrics(client: Any, analyst: Any) -> None:
    propose_entry(analyst)  # something on the chain
    text = scrape(client)
    assert sample(text, "hashsync_audit_verify_ok") is None  # never verified yet
    from audit.models import AuditEvent

    assert sample(text, "hashsync_audit_chain_length") == AuditEvent.objects.count() >= 1

    call_command("audit_verify", stdout=io.StringIO())

    text = scrape(client)
    assert sample(text, "hashsync_audit_verify_ok") == 1
    assert sample(text, "hashsync_audit_verify_finished_timestamp_seconds")


@pytest.mark.django_db
def test_a_broken_audit_chain_shows_in_the_metrics(client: Any, analyst: Any) -> None:
    from audit.models import AuditEvent
    from tests.audit.tampering import append_only_triggers_off

    propose_entry(analyst)
    with append_only_triggers_off():
        # By its place, not seq=1: on PostgreSQL seq comes from a sequence that may skip.
        first = AuditEvent.objects.order_by("seq").first()
        assert first is not None
        AuditEvent.objects.filter(pk=first.pk).update(reason="altered")
    with pytest.raises(CommandError):
        call_command("audit_verify", stdout=io.StringIO())
    assert sample(scrape(client), "hashsync_audit_verify_ok") == 0


def test_counters_from_several_processes_are_summed_in_multiprocess_mode(tmp_path: Path) -> None:
    """Two processes count a rejection each into PROMETHEUS_MULTIPROC_DIR (as two gunicorn
    workers would); a third serves the exposition with both."""
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "hashsync.settings",
        "HASHSYNC_ENV": "development",
    }
    env.pop("DATABASE_URL", None)
    count = "import django; django.setup(); from hashsync import metrics; metrics.BAD_TOKENS.inc()"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], cwd=ROOT, env=env, check=True, timeout=120)
    show = (
        "import django; django.setup(); from hashsync import metrics; "
        "import sys; sys.stdout.write(metrics.generate_latest(metrics._event_registry()).decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", show],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    ).stdout
    assert sample(out, "hashsync_bad_tokens_total") == 2
    assert metrics.UNMATCHED == "unmatched"
    assert re.search(r"^hashsync_bad_tokens_total", out, re.M)


@pytest.mark.django_db
def test_an_invented_method_does_not_create_a_series(client: Any) -> None:
    client.generic("FROBNICATE", "/healthz")
    text = scrape(client)
    assert "FROBNICATE" not in text
    assert sample(
        text, "hashsync_http_requests_total", route="health", method="other", status="4xx"
    )


@pytest.mark.django_db
def test_a_failing_collector_is_left_out_and_named(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hashlist.metrics import CurationCollector

    def fails(self: Any) -> Any:
        raise RuntimeError("postgres://user:secret@db/hashsync")

    monkeypatch.setattr(CurationCollector, "collect", fails)
    text = scrape(client)
    assert sample(text, "hashsync_metrics_collector_ok", collector="CurationCollector") == 0
    assert sample(text, "hashsync_metrics_collector_ok", collector="AuditCollector") == 1
    assert "hashsync_review_queue_depth" not in text
    assert "hashsync_audit_chain_length" in text
    assert "secret" not in text


@pytest.mark.django_db
def test_probes_and_metrics_are_not_redirected_to_https(client: Any, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/api/v1/").status_code == 301  # everything else is
