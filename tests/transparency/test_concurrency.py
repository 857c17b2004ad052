"""Appends from concurrent workers on PostgreSQL: the log's row lock hands out each index once,
and the tree stays the RFC's over the leaves in index order."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from distribution import keys
from hashsync_client.tlog import leaf_bytes
from tests import rfc9162
from transparency import selectors, services
from transparency.models import Checkpoint, LogLeaf

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TIMEOUT = 60
THREADS, EACH = 4, 5


def test_concurrent_appends_give_each_index_once():
    signer = keys.online_signing_key()
    start, failures = threading.Barrier(THREADS, timeout=TIMEOUT), []

    def append(worker: int) -> None:
        try:
            start.wait()
            for i in range(EACH):
                services.log_append(
                    feed=f"f{worker}",
                    version=i,
                    manifest_sha256=f"{worker * 1000 + i + 1:064x}",
                    previous_sha256="",
                    signer=signer,
                )
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=append, args=(w,)) for w in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not failures
    rows = list(LogLeaf.objects.order_by("index"))
    assert [r.index for r in rows] == list(range(THREADS * EACH))
    leaves = [
        leaf_bytes(
            feed=r.feed_name,
            version=r.version,
            manifest_sha256=r.manifest_sha256,
            previous_sha256=r.previous_sha256,
        )
        for r in rows
    ]
    latest = selectors.checkpoint_latest()
    assert latest.size == len(leaves)
    assert bytes(latest.root_hash) == rfc9162.mth(leaves)
    assert Checkpoint.objects.count() == len(leaves)
