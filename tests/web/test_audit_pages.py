"""The auditors' pages (web/views/audit.py): the trail with its filters and keyset paging, an
event's before and after, the CSV export, chain verification from the page, and "who held hash
X". Only auditors may open them (tests/web/test_page_roles.py checks every role); here, what
each page does with good and bad input. Synthetic hashes only."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent, ChainCheck
from audit.services import audit_record
from distribution import keys, releases
from distribution.models import Feed
from hashlist import services
from hashlist.models import Proposal
from tests.audit import conftest as audit_fixtures
from tests.audit.tampering import append_only_triggers_off, change_reason
from tests.conftest import synthetic
from tests.factories import approved_entry, member_with_token
from tests.members.test_holders import ack_from_feed_list
from tests.sync.test_flow import Replica
from tests.utils import audit_events_since, last_audit_seq
from web.forms.audit import KNOWN_ACTIONS
from web.views.audit import PAGE

pytestmark = pytest.mark.django_db

# Six genuine events of different kinds (the audit tests' fixture).
history = audit_fixtures.history

TRAIL = reverse("web-audit")
EXPORT = reverse("web-audit-export")
VERIFY = reverse("web-audit-verify")
CHECKS = reverse("web-audit-checks")
HOLDERS = reverse("web-hash-holders")


def _events(count: int, *, action: str = "sync.plan", actor: str = "member:acme/edge-1") -> list:
    start = last_audit_seq()
    with transaction.atomic():
        for number in range(count):
            audit_record(
                actor=None,
                actor_label=actor,
                action=action,
                object_type="feed",
                object_id=f"feed-{number}",
                after={"n": number},
            )
    return audit_events_since(start)


def _seqs(response: Any) -> list[int]:
    return [int(n) for n in re.findall(r'href="/audit/(\d+)/">#', response.content.decode())]


@pytest.fixture
def auditor_client(client_as: Any) -> Any:
    return client_as("auditor")


# --- The trail and its filters -----------------------------------------------------------------


def test_the_trail_lists_events_newest_first_with_their_before_and_after(auditor_client, history):
    response = auditor_client.get(TRAIL)

    assert response.status_code == 200
    seqs = _seqs(response)
    assert seqs == sorted(seqs, reverse=True)
    assert seqs[0] == history[-1].seq
    body = response.content.decode()
    assert "proposal.reject" in body and "it is A" in body
    assert "&quot;status&quot;: &quot;rejected&quot;" in body  # the rejection's after


def test_an_empty_trail_says_what_will_appear(auditor_client):
    with append_only_triggers_off():
        AuditEvent.objects.all().delete()
    response = auditor_client.get(TRAIL)
    assert response.status_code == 200
    assert b"The trail is empty" in response.content


def test_filters_by_actor_action_entry_member_and_dates(
    auditor_client, history, analyst, reviewer, member_admin
):
    member_with_token(member_admin, name="acme")
    _events(2, actor="member:acme/edge-1")
    _events(1, actor="member:globex/edge-1")

    by_actor = _seqs(auditor_client.get(TRAIL, {"actor": reviewer.get_username()}))
    assert by_actor == [e.seq for e in reversed(history) if e.actor == reviewer.get_username()]

    rejects = _seqs(auditor_client.get(TRAIL, {"action": "proposal.reject"}))
    assert rejects == [history[3].seq]

    # Every event of the history is about a proposal of one entry.
    entry = Proposal.objects.get(pk=history[0].object_id).entry_id
    about_entry = auditor_client.get(TRAIL, {"entry": entry})
    assert set(_seqs(about_entry)) == {e.seq for e in history}
    assert _seqs(auditor_client.get(TRAIL, {"entry": entry + 1000})) == []

    acme = AuditEvent.objects.filter(actor__startswith="member:acme/")
    member_events = set(_seqs(auditor_client.get(TRAIL, {"member": "acme"})))
    assert {e.seq for e in acme} <= member_events
    assert (
        not {e.seq for e in AuditEvent.objects.filter(actor="member:globex/edge-1")} & member_events
    )
    assert AuditEvent.objects.filter(action="member.create", seq__in=member_events).exists()

    today = timezone.now().date()
    assert _seqs(auditor_client.get(TRAIL, {"date_from": today, "date_to": today}))
    tomorrow = today + dt.timedelta(days=1)
    response = auditor_client.get(TRAIL, {"date_from": tomorrow})
    assert _seqs(response) == []
    assert b"No event matches these filters" in response.content
    yesterday = today - dt.timedelta(days=1)
    assert _seqs(auditor_client.get(TRAIL, {"date_to": yesterday})) == []


def test_an_unknown_member_matches_nothing_and_says_so(auditor_client, history):
    response = auditor_client.get(TRAIL, {"member": "nobody"})
    assert response.status_code == 200
    assert _seqs(response) == []
    assert b"No member has the short name" in response.content


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"entry": "abc"}, "entry"),
        ({"entry": "0"}, "entry"),
        ({"entry": "99999999999999999999999"}, "entry"),
        ({"action": "proposal.explode"}, "action"),
        ({"actor": "x" * 151}, "actor"),
        ({"actor": "a\x00b"}, "actor"),
        ({"member": "m" * 65}, "member"),
        ({"date_from": "2026-13-01"}, "date_from"),
        ({"date_from": "2026-12-05", "date_to": "2026-12-01"}, "date_to"),
        ({"date_to": "0001-01-01"}, "date_to"),
    ],
)
def test_bad_filters_are_refused_next_to_their_field(auditor_client, history, params, field):
    response = auditor_client.get(TRAIL, params)
    assert response.status_code == 400
    assert f'id="id_{field}-error"'.encode() in response.content
    # The export refuses them too, with the same page rather than a CSV.
    export = auditor_client.get(EXPORT, params)
    assert export.status_code == 400
    assert export["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "params", [{"before": "abc"}, {"after": "-1"}, {"before": "5", "after": "3"}]
)
def test_bad_paging_parameters_show_the_newest_page_with_the_problem(
    auditor_client, history, params
):
    response = auditor_client.get(TRAIL, params)
    assert response.status_code == 400
    assert _seqs(response)[0] == history[-1].seq
    assert b"error-summary" in response.content


ACTION_PREFIXES = (
    "proposal|import|release|feed|bundle|keyring|member|feedback|sync|staff|staff_token|user|audit"
    "|tlog"
)


def test_the_action_filter_offers_every_action_the_services_record():
    root = Path(__file__).resolve().parents[2]
    literal = re.compile(rf'"((?:{ACTION_PREFIXES})\.[a-z_]+)"')
    found = set()
    apps = ("accounts", "audit", "distribution", "hashlist", "hashsync", "members", "sync")
    for app in (*apps, "transparency"):
        for source in (root / app).rglob("*.py"):
            if "migrations" in source.parts:
                continue
            text = source.read_text(encoding="utf-8")
            if "audit_record" not in text and "_record(" not in text and "action" not in text:
                continue
            found |= {m for m in literal.findall(text) if "audit" in text}
    # Literals that are not actions (permission names and the like).
    found = {a for a in found if a.split(".")[1] not in {"view_auditevent"}}
    missing = sorted(a for a in found if a not in KNOWN_ACTIONS and "." in a)
    assert not missing, f"actions missing from web.forms.audit.KNOWN_ACTIONS: {missing}"


# --- Keyset paging -----------------------------------------------------------------------------


def test_paging_walks_older_and_newer_by_event_number(auditor_client):
    events = _events(2 * PAGE + 7)
    newest = events[-1].seq

    first = auditor_client.get(TRAIL, {"action": "sync.plan"})
    assert _seqs(first) == list(range(newest, newest - PAGE, -1))
    assert b"Newer events" not in first.content
    older = first.context["older_url"]
    assert older == f"?action=sync.plan&before={newest - PAGE + 1}"

    second = auditor_client.get(TRAIL + older)
    assert _seqs(second) == list(range(newest - PAGE, newest - 2 * PAGE, -1))
    third = auditor_client.get(TRAIL + second.context["older_url"])
    assert _seqs(third) == list(range(newest - 2 * PAGE, newest - 2 * PAGE - 7, -1))
    assert third.context["older_url"] is None  # the last page: exactly 7 left

    back = auditor_client.get(TRAIL + third.context["newer_url"])
    assert _seqs(back) == _seqs(second)
    top = auditor_client.get(TRAIL + second.context["newer_url"])
    assert _seqs(top) == _seqs(first)
    assert top.context["newer_url"] is None


def test_a_page_exactly_full_has_no_older_link(auditor_client):
    events = _events(PAGE, action="sync.ack")
    response = auditor_client.get(TRAIL, {"action": "sync.ack"})
    assert len(_seqs(response)) == PAGE
    assert response.context["older_url"] is None
    past_the_end = auditor_client.get(TRAIL, {"action": "sync.ack", "before": events[0].seq})
    assert _seqs(past_the_end) == []
    assert b"No more events this way" in past_the_end.content


def test_a_page_never_counts_the_table_nor_skips_with_offset(auditor_client):
    _events(PAGE + 5)
    with CaptureQueriesContext(connection) as queries:
        response = auditor_client.get(
            TRAIL, {"actor": "member:acme/edge-1", "before": "999999", "date_from": "2000-01-01"}
        )
    assert response.status_code == 200
    trail_sql = [q["sql"] for q in queries.captured_queries if "hashlist_auditevent" in q["sql"]]
    assert trail_sql
    for sql in trail_sql:
        assert "COUNT(" not in sql.upper(), sql
        assert "OFFSET" not in sql.upper(), sql


def test_the_actor_and_action_filters_read_their_indexes(auditor_client):
    """Newest-first pages of one actor or one action are an index range read backwards, not a
    walk of the whole table. With a handful of rows a planner prefers scanning, so on
    PostgreSQL sequential and bitmap scans are switched off to ask whether the index serves
    the query, in its order, at all."""
    from audit.selectors import TrailFilter, audit_trail

    def plan(trail: TrailFilter) -> str:
        query = audit_trail(trail).order_by("-seq")[: PAGE + 1]
        if connection.vendor != "postgresql":
            return query.explain()
        with transaction.atomic(), connection.cursor() as cursor:
            # A bitmap scan reads the index too, but unordered (then sorts): also off, so the
            # plan says whether the index's order serves the newest-first page.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            return query.explain()

    by_actor = plan(TrailFilter(actor="someone"))
    assert "audit_actor_seq_idx" in by_actor, by_actor
    by_action = plan(TrailFilter(action="sync.plan"))
    assert "audit_action_seq_idx" in by_action, by_action
    assert "Sort" not in by_actor + by_action and "TEMP B-TREE" not in by_actor + by_action


# --- One event ---------------------------------------------------------------------------------


def test_an_event_shows_before_and_after_side_by_side(auditor_client, history):
    rejection = history[3]
    response = auditor_client.get(reverse("web-audit-event", args=[rejection.seq]))
    assert response.status_code == 200
    body = response.content.decode()
    assert f"Event #{rejection.seq}" in body
    assert "it is A" in body
    assert '<tr class="changed">' in body  # status pending → rejected
    assert rejection.digest in body


def test_an_unknown_event_is_not_found(auditor_client):
    assert auditor_client.get(reverse("web-audit-event", args=[10**12])).status_code == 404


# --- CSV export --------------------------------------------------------------------------------


def _csv(response: Any) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_the_export_streams_the_filtered_range_oldest_first(auditor_client, history):
    today = timezone.now().date()
    response = auditor_client.get(
        EXPORT, {"action": "proposal.reject", "date_from": today, "date_to": today}
    )
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="audit-trail-{today}-to-{today}.csv"'
    )
    header, *rows = _csv(response)
    assert header[:4] == ["seq", "at", "actor", "action"]
    assert header[-2:] == ["lane", "lane_seq"]
    assert [int(r[0]) for r in rows] == [history[3].seq]
    assert [(int(r[-2]), int(r[-1])) for r in rows] == [(0, history[3].lane_seq)]
    assert rows[0][6] == "it is A"


def test_the_export_of_everything_is_oldest_first_and_named_from_the_start(auditor_client, history):
    response = auditor_client.get(EXPORT)
    assert response["Content-Disposition"].startswith('attachment; filename="audit-trail-start-to-')
    seqs = [int(r[0]) for r in _csv(response)[1:]]
    assert seqs == sorted(seqs) and seqs[-1] == history[-1].seq


def test_the_export_cannot_carry_a_spreadsheet_formula(auditor_client):
    with transaction.atomic():
        audit_record(
            actor=None,
            actor_label="=cmd|'/c calc'!A1",
            action="feedback.create",
            object_type="feedback",
            object_id="@SUM(1)",
            reason='=HYPERLINK("http://example.invalid","x")',
            after={"note": "+1"},
        )
    rows = _csv(auditor_client.get(EXPORT, {"action": "feedback.create"}))
    (row,) = rows[1:]
    assert row[2] == "'=cmd|'/c calc'!A1"
    assert row[5] == "'@SUM(1)"
    assert row[6].startswith("'=HYPERLINK")
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)


# --- Chain verification ------------------------------------------------------------------------


def test_verifying_an_intact_chain_from_the_page(
    auditor_client, auditor, history, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = auditor_client.post(VERIFY)
    assert response.status_code == 302 and response["Location"] == CHECKS

    check = ChainCheck.objects.get()
    assert (check.ok, check.first_bad_seq, check.started_by_id) == (True, None, auditor.pk)
    # Starting it is on the trail, and the check read it too.
    started = AuditEvent.objects.get(action="audit.chain_check")
    assert started.actor == auditor.get_username() and started.object_id == str(check.pk)
    assert check.events_checked == started.lane_seq  # every event is on lane 0 here

    page = auditor_client.get(CHECKS)
    assert b"Intact" in page.content
    assert b"hx-trigger" not in page.content  # finished: nothing polls


def test_a_tampered_chain_names_the_first_bad_event_with_a_link(
    auditor_client, history, django_capture_on_commit_callbacks
):
    with append_only_triggers_off():
        bad = change_reason(history)
    with django_capture_on_commit_callbacks(execute=True):
        auditor_client.post(VERIFY)

    check = ChainCheck.objects.get()
    assert (check.ok, check.first_bad_seq) == (False, bad)
    page = auditor_client.get(CHECKS).content.decode()
    assert "Not intact" in page
    assert f'<a href="{reverse("web-audit-event", args=[bad])}">event #{bad}</a>' in page
    assert "was altered" in page
    trail = auditor_client.get(TRAIL).content.decode()
    assert f"event #{bad}" in trail


def test_a_running_check_is_polled_and_not_started_twice(auditor_client, history):
    # Without running the on-commit task, the check stays "running".
    auditor_client.post(VERIFY)
    again = auditor_client.post(VERIFY, follow=True)
    assert ChainCheck.objects.count() == 1
    assert b"is still running" in again.content
    check = ChainCheck.objects.get()
    assert f'hx-get="{reverse("web-audit-check", args=[check.pk])}"'.encode() in again.content
    fragment = auditor_client.get(reverse("web-audit-check", args=[check.pk]))
    assert b'hx-trigger="every 2s"' in fragment.content
    assert b"<html" not in fragment.content


def test_an_abandoned_check_stops_polling_and_lets_a_new_one_start(auditor_client, settings):
    ChainCheck.objects.create(
        started_at=timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 5),
        started_by_name="someone",
    )
    page = auditor_client.get(CHECKS)
    assert b"Did not finish" in page.content and b"hx-trigger" not in page.content
    auditor_client.post(VERIFY)
    assert ChainCheck.objects.count() == 2


def test_an_unknown_check_is_not_found(auditor_client):
    assert auditor_client.get(reverse("web-audit-check", args=[424242])).status_code == 404


def test_the_checks_page_before_any_check(auditor_client):
    response = auditor_client.get(CHECKS)
    assert response.status_code == 200
    assert b"Nobody has verified the chain from these pages" in response.content


def test_verify_is_post_only(auditor_client):
    assert auditor_client.get(VERIFY).status_code == 405


# --- Who held hash X ---------------------------------------------------------------------------

FEED = "md5-all"


@pytest.fixture
def retracted(analyst, reviewer, member_admin, api, settings) -> dict[str, Any]:
    """A hash listed, then retracted: acme downloaded both versions and acknowledged the one
    without it; globex acknowledged the first and never the removal."""
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0
    Feed.objects.create(name=FEED, algorithms=["md5"])
    entry = approved_entry(analyst, reviewer)
    releases.release_cut()
    _, acme = member_with_token(member_admin, name="acme", feeds=(FEED,))
    _, globex = member_with_token(member_admin, name="globex", feeds=(FEED,))
    keyring = keys.current_keyring()
    assert keyring is not None
    replica = Replica(api(None), acme, FEED, keyring.root_keyids)
    replica.sync()
    replica.ack()
    ack_from_feed_list(api(None), globex)
    proposal = services.proposal_retract(
        actor=analyst, entry_id=entry.pk, reason="synthetic: wrongly listed"
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    removed = releases.release_cut()
    assert removed is not None
    replica.sync()
    replica.ack()
    return {"md5": bytes(entry.hashes.get(algorithm="md5").value).hex(), "removed": removed}


def test_the_form_page_asks_for_algorithm_and_hash(auditor_client):
    response = auditor_client.get(HOLDERS)
    assert response.status_code == 200
    assert b'name="algorithm"' in response.content and b'name="value"' in response.content
    assert b'method="post"' in response.content


def test_hash_holders_shows_the_client_that_never_acknowledged_the_removal(
    auditor_client, retracted
):
    response = auditor_client.post(HOLDERS, {"algorithm": "md5", "value": retracted["md5"].upper()})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert retracted["md5"] not in response.request["PATH_INFO"]
    body = response.content.decode()
    assert "Retracted" in body
    assert "1 client never acknowledged the removal" in body
    clients = response.context["clients"]
    assert [(c["member"], c["open"]) for c in clients] == [("globex", True), ("acme", False)]
    acme = clients[1]["feeds"][0]
    assert [m["what"] for m in acme["moments"]] == [
        "Acknowledged a version listing it",
        f"Removal published in version {retracted['removed'].version}",
        "Acknowledged a version without it",
    ]
    assert all(m["at"] for m in acme["moments"])
    assert "No acknowledgement of a version without it yet." in body
    assert "<title>Who held a hash" in body and retracted["md5"] not in body.split("</title>")[0]


def test_a_hash_nobody_holds_says_so(auditor_client, retracted):
    response = auditor_client.post(HOLDERS, {"algorithm": "md5", "value": synthetic("md5")})
    assert response.status_code == 200
    assert b"No entry holds this hash" in response.content


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"algorithm": "md5", "value": "ab" * 15}, "value", "expected 32 hexadecimal"),
        ({"algorithm": "md5", "value": "zz" * 16}, "value", "expected 32 hexadecimal"),
        ({"algorithm": "md4", "value": "ab" * 16}, "algorithm", "Select a valid choice"),
        ({"algorithm": "", "value": "ab" * 16}, "algorithm", "Choose the hash"),
        ({"algorithm": "md5", "value": ""}, "value", "Paste the hash"),
        ({"algorithm": "md5", "value": "a" * 100_000}, "value", "at most"),
        ({"algorithm": "md5", "value": "\x00" * 32}, "value", ""),
    ],
)
def test_bad_hash_input_is_refused_next_to_the_field(auditor_client, data, field, words):
    response = auditor_client.post(HOLDERS, data)
    assert response.status_code == 400
    body = response.content.decode()
    match = re.search(rf'<p class="error" id="id_{field}-error">(.*?)</p>', body, re.S)
    assert match, body[:2000]
    assert words in match.group(1)


def test_the_trail_and_an_event_show_its_lane_and_place_in_it(auditor_client, settings):
    settings.HASHSYNC_AUDIT_LANES = 4
    with transaction.atomic():
        member = audit_record(
            actor=None,
            actor_label="member:acme/edge-1",
            client_id=6,
            action="sync.ack",
            object_type="feed",
            object_id=1,
        )
    assert (member.lane, member.lane_seq) == (3, 1)

    trail = auditor_client.get(TRAIL, {"action": "sync.ack"}).content.decode()
    assert '<td class="num nowrap">3 <span class="small muted">#1</span></td>' in trail
    page = auditor_client.get(reverse("web-audit-event", args=[member.seq])).content.decode()
    assert "3 (member clients), event #1 of the lane" in page
