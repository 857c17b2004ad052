"""Migration 0007 on an existing list: every entry keeps exactly the grading members received,
its facts start unknown except where the stored fields determine them, entries whose stored
fields contradict each other keep unknown facts (and are reported), and version 1 of every
framework is stored. Runs on SQLite and PostgreSQL.

Transactional, because SQLite cannot migrate inside the test's transaction. Its rows are made
with the historical models (no audit events), so the final flush has nothing append-only."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from hashlist.framework_store import grading_disagreements
from hashlist.frameworks.initial import FRAMEWORKS
from hashlist.models import Entry, FrameworkVersion

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("hashlist", "0006_report_indexes")
GRADING = ("category", "age_group", "baseline", "industry_class", "content_type")
# Stored gradings of the existing list and the facts they determine ({} = none, None = they
# contradict each other).
CASES = [
    (("A", "7-10", None, "", "image"), {}),
    (("B", "16-17", None, "", "video"), {"activity": "non_penetrative"}),
    (("A", "3-6", True, "A1", "image"), {"origin": "real", "pubertal_stage": "prepubescent"}),
    (
        ("C", "11-13", False, "B2", "image"),
        {"activity": "lascivious_exhibition", "pubertal_stage": "pubescent"},
    ),
    (("C", "7-10", None, "A1", "image"), None),
    (("A", "16-17", True, "B1", "image"), None),
]


def migrate(targets: Any) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor


def test_existing_entries_keep_their_grading_and_gain_only_determined_facts() -> None:
    executor = migrate([BEFORE])
    old_entry = executor.loader.project_state(BEFORE).apps.get_model("hashlist", "Entry")
    ids = [
        old_entry.objects.create(**dict(zip(GRADING, stored, strict=True)), revision=3).pk
        for stored, _ in CASES
    ]
    try:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

        for pk, (stored, expected) in zip(ids, CASES, strict=True):
            entry = Entry.objects.get(pk=pk)
            assert tuple(getattr(entry, f) for f in GRADING) == stored
            assert entry.revision == 3  # not a change: nothing for members, nothing to release
            facts = {
                name: getattr(entry, name)
                for name in ("pubertal_stage", "activity", "origin", "self_generated")
                if getattr(entry, name) != "unknown"
            }
            assert facts == (expected or {})

        reported = {pk for finding in grading_disagreements() for pk in finding.entry_ids}
        contradicting = [pk for pk, (_, facts) in zip(ids, CASES, strict=True) if facts is None]
        assert reported == set(contradicting)
        seeded = {
            v.framework.slug: v.definition
            for v in FrameworkVersion.objects.filter(version=1).select_related("framework")
        }
        assert seeded == {slug: f["definition"] for slug, f in FRAMEWORKS.items()}
    finally:
        Entry.objects.filter(pk__in=ids).delete()
