"""tlog_backfill enters manifests signed before the log existed, oldest first, once."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from distribution import releases
from distribution.models import Manifest
from tests.distribution.releases.conftest import make_feed
from tests.factories import approved_entry
from transparency.models import Checkpoint, LogLeaf, LogNode, LogState

pytestmark = pytest.mark.django_db


def test_backfill_appends_what_the_log_lacks_in_signing_order(analyst, reviewer):
    make_feed("all")
    approved_entry(analyst, reviewer)
    releases.release_cut()
    for model in (LogLeaf, LogNode, Checkpoint, LogState):  # a server from before the log
        model.objects.all().delete()
    out = io.StringIO()
    call_command("tlog_backfill", stdout=out)
    manifests = list(Manifest.objects.order_by("id").values_list("sha256", flat=True))
    assert "2 manifest(s)" in out.getvalue()
    assert list(LogLeaf.objects.order_by("index").values_list("manifest_sha256", flat=True)) == (
        manifests
    )
    assert AuditEvent.objects.filter(action="tlog.backfilled").count() == 1
    call_command("tlog_backfill", stdout=out)
    assert LogLeaf.objects.count() == len(manifests)
    assert AuditEvent.objects.filter(action="tlog.backfilled").count() == 1
