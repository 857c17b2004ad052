"""List what analysts should look at in the gradings: entries whose stored fields disagree with
each other or with the class their facts determine, and how many entries each framework leaves
unassessed (``--unassessed SLUG`` lists them). Read-only; entry ids only, never hash values.

    python manage.py grading_report [--json] [--sample N] [--unassessed uk]

Exits 1 when some entry's stored fields disagree, so a scheduled run can alert on it."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hashlist import framework_store


class Command(BaseCommand):
    help = "Report entries whose stored grading fields disagree, and unassessed entries."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
        parser.add_argument(
            "--sample", type=int, default=20, help="entry ids shown per group (default 20)"
        )
        parser.add_argument(
            "--unassessed", metavar="SLUG", help="list the entries this framework leaves unassessed"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        sample = max(0, min(options["sample"], 10_000))
        findings = list(framework_store.grading_disagreements(sample=sample))
        report: dict[str, Any] = {
            "disagreeing_entries": sum(f.count for f in findings),
            "disagreements": [
                {
                    "grading": f.grading,
                    "facts": f.facts,
                    "reasons": f.reasons,
                    "count": f.count,
                    "entry_ids": f.entry_ids,
                }
                for f in findings
            ],
            "unassessed": framework_store.unassessed_counts(),
        }
        slug = options["unassessed"]
        if slug:
            if slug not in report["unassessed"]:
                raise CommandError(
                    f"No framework {slug!r}; known: {', '.join(report['unassessed'])}."
                )
            report["unassessed_entries"] = {
                slug: framework_store.unassessed_entries(slug=slug, limit=sample or 100)
            }
        if options["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
        else:
            self._print(report)
        if findings:
            raise SystemExit(1)

    def _print(self, report: dict[str, Any]) -> None:
        out = self.stdout.write
        out(f"Entries whose stored fields disagree: {report['disagreeing_entries']}")
        for finding in report["disagreements"]:
            ids = ", ".join(str(i) for i in finding["entry_ids"])
            more = finding["count"] - len(finding["entry_ids"])
            out(f"  {finding['count']} entries: {'; '.join(finding['reasons'])}")
            out(f"    ids {ids}{f' and {more} more' if more > 0 else ''}")
        out("Unassessed entries per framework (facts do not determine a class):")
        for slug, count in report["unassessed"].items():
            out(f"  {slug}: {count}")
        for slug, ids in report.get("unassessed_entries", {}).items():
            out(f"  {slug} unassessed ids: {', '.join(str(i) for i in ids) or 'none'}")
