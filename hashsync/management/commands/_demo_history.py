"""Weeks of demo history for ``seed_demo``: SYNTHETIC entries proposed and reviewed, releases
cut, member organisations set up, and their sync clients syncing — each written by the
ordinary services at the moment it happens in the story (``_demo_clock``), in time order.

The story, relative to the moment of seeding ("now"):

- 8 weeks ago the feeds exist and the list starts with a first batch of entries; from then on
  two analysts propose new entries (now and then a regrading or a retraction), and two reviewers
  decide them at review sessions (11:00 and 16:00 UTC on weekdays, 12:00 at weekends), hours to
  days after they were proposed; a few proposals are rejected. Every session that approves
  something is followed by a real release cut (signed manifests, delta bundles, snapshots when
  due); manifests of unchanged feeds are re-signed every night as the beat task would.
- Last Tuesday a member's dispute was upheld and the entry retracted (released at 11:00).
- Five synthetic organisations (plus ``demo-member``), their contacts, licences (one PhotoDNA
  licence expired), entitlements and sync clients. Clients sync as a real one does — plan,
  bundles, ack, through ``sync.services`` — so fleet figures and hash-holders read real data:
  current ones; one a release behind; one a day behind; one stuck since the Monday before last
  Tuesday (it keeps acknowledging its old version, so it never acknowledged the retraction);
  one whose acks carry a wrong state digest; one that never synced; one whose token was
  replaced (the old one revoked); one member suspended.
- A dispute is open, one was upheld (the retraction above), one dismissed; a few proposals
  wait for review.

Every hash is random bytes, labelled ``source = "synthetic-demo"``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import itertools
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import RequestFactory
from rest_framework.request import Request

from distribution import keys, plans, releases
from distribution import selectors as distribution_selectors
from distribution.models import Feed
from distribution.services import feed_create
from hashlist import services
from hashlist.changelog import changes_waiting
from hashlist.models import Entry, EntryStatus, Proposal, ProposalStatus
from hashsync.errors import PermissionDenied
from hashsync_client.algorithms import ALGORITHMS
from hashsync_client.format import AGE_GROUPS, CATEGORIES
from members import selectors as member_selectors
from members import services as member_services
from members.models import Member
from sync import services as sync_services
from sync.auth import MemberPrincipal, token_authenticate

from ._demo_clock import DemoClock

SOURCE = "synthetic-demo"
NOTES = "SYNTHETIC demo entry: random bytes, not a hash of any real content."
WEEKS = 8
MINIMUM_ENTRIES = 20
TUESDAY = 1  # datetime.weekday()
SCOPES = ["sync", "lookup", "feedback"]
UTC = dt.UTC


def synthetic_hash(rng: random.Random, algorithm: str) -> str:
    algo = ALGORITHMS[algorithm]
    return algo.canonical(rng.randbytes(algo.length))


def last_tuesday(now: dt.datetime) -> dt.date:
    """The Tuesday before today (a week ago when today is a Tuesday)."""
    back = (now.weekday() - TUESDAY) % 7 or 7
    return (now - dt.timedelta(days=back)).date()


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def history_start(now: dt.datetime) -> dt.datetime:
    """08:00 UTC on the day ``WEEKS`` weeks before ``now``: where the story begins."""
    return _at((now - dt.timedelta(weeks=WEEKS)).date(), 8)


@dataclass(frozen=True)
class ClientPlan:
    """How one sync client behaves in the story."""

    member: str
    name: str
    # follow: syncs minutes after every review session; daily: once a day at 06:xx
    behaviour: str = "follow"
    stop_at: dt.datetime | None = None  # never syncs after this moment
    stuck_from: dt.datetime | None = None  # from here on it cannot apply: acks its old version
    mismatch_from: dt.datetime | None = None  # from here on its acks carry a wrong digest
    created_at: dt.datetime | None = None  # when its token is issued (default: its member's)
    never_syncs: bool = False
    rotate_at: dt.datetime | None = None  # a new token then (expiring in a year), old revoked


@dataclass
class _Client:
    plan: ClientPlan
    token: str = ""
    token_id: int = 0
    held: dict[str, int] = field(default_factory=dict)
    releases_seen: int = -1  # how many releases had been cut at its last sync


@dataclass(frozen=True)
class MemberPlan:
    name: str
    display_name: str
    created_at: dt.datetime
    feeds: list[str]
    contacts: list[tuple[str, str, str]]
    licence_until: dt.datetime | None = None  # PhotoDNA licence, if any
    licence_reference: str = ""


@dataclass
class HistorySummary:
    start: dt.datetime
    releases: int
    demo_member_token: str
    retraction_entry: int | None


class DemoHistory:
    """Plans the story, then plays it: every action at its moment, in time order."""

    def __init__(
        self,
        *,
        clock: DemoClock,
        now: dt.datetime,
        users: dict[str, Any],
        entries: int,
        pending: int,
        demo_member: str,
        demo_member_display: str,
        demo_member_feeds: list[str],
        feeds: list[dict[str, Any]],
        write: Callable[[str], None],
    ) -> None:
        self.clock = clock
        self.now = now
        self.users = users
        self.entries = entries
        self.pending = pending
        self.demo_member = (demo_member, demo_member_display, demo_member_feeds)
        self.feeds = feeds
        self.write = write
        # Fresh hash values per database; the shape of the story is the same every time.
        self.values = random.Random(secrets.randbits(64))
        self.rng = random.Random(13)
        self.start = history_start(now)
        self.tuesday = last_tuesday(now)
        self.retraction_session = _at(self.tuesday, 11)
        self._queue: list[tuple[dt.datetime, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._buckets: dict[dt.datetime, list[tuple[int, str, str]]] = {}
        self._clients: dict[tuple[str, str], _Client] = {}
        self._reserved: set[int] = set()
        self._releases = 0
        self._demo_token = ""
        self._retracted_entry: int | None = None
        self._disputes: dict[str, tuple[int, int]] = {}
        self._created = itertools.count()
        self._request = RequestFactory().get("/api/v1/sync/feeds/", REMOTE_ADDR="192.0.2.10")

    # --- planning ------------------------------------------------------------------------------

    def _schedule(self, when: dt.datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._order), action))

    def _sessions(self) -> list[dt.datetime]:
        found = []
        day = self.start.date()
        while day <= self.now.date():
            hours = (11, 16) if day.weekday() < 5 else (12,)
            found += [
                _at(day, h) for h in hours if _at(day, h) < self.now - dt.timedelta(minutes=30)
            ]
            day += dt.timedelta(days=1)
        return found

    def _working_moment(self, low: dt.datetime, high: dt.datetime) -> dt.datetime:
        """A moment in [low, high), mostly in office hours on weekdays."""
        for _ in range(50):
            moment = low + (high - low) * self.rng.random()
            weekday = moment.weekday() < 5 or self.rng.random() < 0.15
            if weekday and 8 <= moment.hour < 18:
                return moment.replace(second=self.rng.randrange(60), microsecond=0)
        return low + (high - low) * self.rng.random()

    def _decision_session(self, sessions: list[dt.datetime], proposed: dt.datetime) -> dt.datetime:
        """Hours to days after the proposal: usually the next session or the one after."""
        later = [s for s in sessions if s >= proposed + dt.timedelta(minutes=45)]
        skip = self.rng.choices([0, 1, 2, 3, 5], weights=[40, 30, 15, 10, 5])[0]
        return later[min(skip, len(later) - 1)]

    def plan(self) -> None:
        sessions = self._sessions()
        if len(sessions) < 10:
            raise ValueError("The demo history needs weeks of review sessions.")
        analysts = [self.users["analyst"], self.users["analyst2"]]
        # Start: feeds and signing keys, then the list as it stood 8 weeks ago.
        self._schedule(self.start, self._setup)
        first_session = sessions[0]
        initial = self.entries * 2 // 5
        for i in range(initial):
            when = self.start + dt.timedelta(minutes=10 + i * 50 // max(initial, 1))
            self._plan_create(when, analysts[i % 2], first_session, "approve")
        # The rest of the list over the weeks, each decided at a session hours to days later.
        last = sessions[-1]
        spread_from = self.start + dt.timedelta(days=1)
        creates = []
        for _ in range(self.entries - initial):
            when = self._working_moment(spread_from, last - dt.timedelta(hours=1))
            creates.append((when, self._decision_session(sessions, when)))
        # The last two sessions each release something: "one release behind" is exact.
        creates.sort()
        if len(creates) >= 2:
            creates[-1] = (sessions[-1] - dt.timedelta(hours=2), sessions[-1])
            creates[-2] = (sessions[-2] - dt.timedelta(hours=2), sessions[-2])
        for i, (when, session) in enumerate(creates):
            # The last two land in every MD5 feed too (category A), so clients that missed
            # them are behind on the feeds they receive, not only on the release number.
            forced = len(creates) - i <= 2
            self._plan_create(when, analysts[i % 2], session, "approve", category_a=forced)
        for _ in range(max(2, self.entries // 25)):
            when = self._working_moment(spread_from, last - dt.timedelta(hours=1))
            analyst = self.rng.choice(analysts)
            self._plan_create(when, analyst, self._decision_session(sessions, when), "reject")
        for kind, count in (
            ("regrade", max(2, self.entries // 20)),
            ("retract", max(2, self.entries // 40)),
        ):
            for _ in range(count):
                when = self._working_moment(spread_from, last - dt.timedelta(hours=1))
                session = min(self._decision_session(sessions, when), sessions[-2])
                if session <= when:
                    continue
                self._schedule(when, partial(self._propose_change, kind, session))
        for session in sessions:
            self._schedule(session, partial(self._review_session, session))
        day = self.start.date() + dt.timedelta(days=1)
        while _at(day, 3) < self.now:
            self._schedule(_at(day, 3), self._resign)
            day += dt.timedelta(days=1)
        self._plan_members(sessions)
        self._plan_disputes()
        # Proposals still waiting for a reviewer, made in the working hours after the last
        # session (not at night: nobody will believe an analyst at work at 02:00).
        low = sessions[-1] + dt.timedelta(minutes=20)
        high = min(low + dt.timedelta(minutes=100), self.now - dt.timedelta(minutes=15))
        for i in range(self.pending):
            when = low + (high - low) * (i + 1) / (self.pending + 1)
            if i == 2:
                self._schedule(when, partial(self._propose_change, "regrade", None))
            else:
                self._plan_create(when, analysts[i % 2], None, "")

    def _plan_create(
        self,
        when: dt.datetime,
        analyst: Any,
        session: dt.datetime | None,
        decision: str,
        *,
        category_a: bool = False,
    ) -> None:
        self._schedule(when, partial(self._propose_create, analyst, session, decision, category_a))

    def _plan_members(self, sessions: list[dt.datetime]) -> None:
        now, day = self.now, self.start
        members = [
            MemberPlan(
                "northwind-hosting",
                "Northwind Hosting (synthetic)",
                day + dt.timedelta(days=1, hours=2),
                ["all", "photodna-all"],
                [
                    ("Ada Synthetic", "ada@northwind.example.com", "technical"),
                    ("Ben Example", "legal@northwind.example.com", "legal"),
                ],
                now + dt.timedelta(days=240),
                "PDNA-SYNTH-0142",
            ),
            MemberPlan(
                "lumen-social",
                "Lumen Social (synthetic)",
                day + dt.timedelta(days=2, hours=3),
                ["md5-sha1-category-a", "pdq-baseline"],
                [
                    ("Chidi Placeholder", "chidi@lumen.example.com", "trust_safety"),
                    ("Dana Fictional", "sre@lumen.example.com", "technical"),
                ],
            ),
            MemberPlan(
                "harbour-cloud",
                "Harbour Cloud Storage (synthetic)",
                day + dt.timedelta(days=3, hours=4),
                ["photodna-all", "md5-sha1-category-a"],
                [("Eli Madeup", "eli@harbour.example.com", "technical")],
                now - dt.timedelta(days=9, hours=7),
                "PDNA-SYNTH-0077",
            ),
            MemberPlan(
                "quarry-search",
                "Quarry Search (synthetic)",
                day + dt.timedelta(days=6, hours=2),
                ["all"],
                [
                    ("Fay Invented", "fay@quarry.example.com", "trust_safety"),
                    ("Gus Sample", "ops@quarry.example.com", "technical"),
                ],
                now + dt.timedelta(days=400),
                "PDNA-SYNTH-0219",
            ),
            MemberPlan(
                "oldtown-forums",
                "Oldtown Forums (synthetic)",
                day + dt.timedelta(days=9, hours=5),
                ["md5-sha1-category-a"],
                [("Hal Notreal", "admin@oldtown.example.com", "technical")],
            ),
        ]
        name, display, demo_feeds = self.demo_member
        members.append(
            MemberPlan(name, display, day + dt.timedelta(days=2, hours=1), demo_feeds, [])
        )
        retraction = self.retraction_session
        suspended = (now - dt.timedelta(days=12)).replace(hour=14, minute=20)
        clients = [
            # Its first token was replaced (and revoked) three weeks ago.
            ClientPlan("northwind-hosting", "edge-1", rotate_at=now - dt.timedelta(days=20)),
            ClientPlan("northwind-hosting", "edge-2"),
            ClientPlan("lumen-social", "edge-a"),
            # Synced after every session but the last release's.
            ClientPlan("lumen-social", "edge-b", stop_at=sessions[-1] - dt.timedelta(minutes=1)),
            ClientPlan(
                "lumen-social",
                "staging",
                created_at=now - dt.timedelta(days=3, hours=2),
                never_syncs=True,
            ),
            ClientPlan("harbour-cloud", "sync-eu", stop_at=now - dt.timedelta(hours=26)),
            # Stopped applying updates the Monday afternoon before last Tuesday's retraction,
            # and still acknowledges the version it holds: never acknowledged the retraction.
            ClientPlan("quarry-search", "indexer", stuck_from=retraction - dt.timedelta(hours=20)),
            ClientPlan("quarry-search", "crawler", mismatch_from=now - dt.timedelta(days=2)),
            ClientPlan("oldtown-forums", "web-1", behaviour="daily", stop_at=suspended),
            ClientPlan(name, "edge-1", never_syncs=True),  # the README's client syncs it
        ]
        for member in members:
            self._schedule(member.created_at, partial(self._create_member, member))
        for client in clients:
            created = client.created_at or next(
                m.created_at for m in members if m.name == client.member
            ) + dt.timedelta(minutes=20)
            self._clients[(client.member, client.name)] = state = _Client(client)
            self._schedule(created, partial(self._create_client, state))
            if client.rotate_at is not None:
                self._schedule(client.rotate_at, partial(self._rotate_token, state))
            if client.never_syncs:
                continue
            if client.behaviour == "daily":
                moments = []
                day_ = created.date() + dt.timedelta(days=1)
                while _at(day_, 6) < now:
                    moments.append(_at(day_, 6, self.rng.randrange(60)))
                    day_ += dt.timedelta(days=1)
            else:
                delay = self.rng.randrange(3, 15)
                moments = [s + dt.timedelta(minutes=delay) for s in sessions if s > created]
                # Current clients were last seen minutes ago: an up-to-date poll.
                last_poll = now - dt.timedelta(minutes=self.rng.randrange(2, 9))
                if client.stop_at is None:
                    self._schedule(last_poll, partial(self._sync, state, poll=True))
            moments = [created + dt.timedelta(minutes=5), *moments]
            for moment in moments:
                if client.stop_at is None or moment < client.stop_at:
                    self._schedule(moment, partial(self._sync, state))
        self._schedule(
            suspended,
            partial(
                self._suspend,
                "oldtown-forums",
                "Membership agreement lapsed; renewal under discussion (synthetic demo).",
            ),
        )
        # Suspended for a day a month ago, then reinstated: its client was refused meanwhile.
        paused = _at((now - dt.timedelta(days=33)).date(), 10, 10)
        self._schedule(
            paused,
            partial(self._suspend, "harbour-cloud", "Invoice overdue (synthetic demo)."),
        )
        self._schedule(
            paused + dt.timedelta(hours=23, minutes=20),
            partial(self._reinstate, "harbour-cloud", "Invoice paid (synthetic demo)."),
        )

    def _plan_disputes(self) -> None:
        tuesday = self.retraction_session
        # Upheld: reported on Monday, retracted by Tuesday's 11:00 session, resolved after.
        self._schedule(tuesday - dt.timedelta(hours=21), partial(self._dispute, "upheld"))
        self._schedule(tuesday - dt.timedelta(hours=1, minutes=45), self._retract_disputed)
        self._schedule(tuesday + dt.timedelta(minutes=40), partial(self._resolve, "upheld"))
        # Dismissed three weeks ago; open since the day before yesterday.
        three_weeks = _at((self.now - dt.timedelta(days=21)).date(), 10, 5)
        self._schedule(three_weeks, partial(self._dispute, "dismissed"))
        self._schedule(three_weeks + dt.timedelta(hours=26), partial(self._resolve, "dismissed"))
        self._schedule(self.now - dt.timedelta(hours=40), partial(self._dispute, "open"))

    # --- playing -------------------------------------------------------------------------------

    def play(self) -> HistorySummary:
        self.plan()
        # The seeder cuts each release itself at its session's moment: the approvals' own
        # "cut a release after commit" would run later (or, with a broker, on a worker's clock).
        receivers = changes_waiting.disconnect(dispatch_uid="distribution.release_cut")
        try:
            while self._queue:
                when, _, action = heapq.heappop(self._queue)
                if when >= self.now:
                    continue
                self.clock.at(when)
                action()
        finally:
            if receivers:
                from distribution.tasks import on_changes_waiting

                changes_waiting.connect(on_changes_waiting, dispatch_uid="distribution.release_cut")
        return HistorySummary(self.start, self._releases, self._demo_token, self._retracted_entry)

    def _setup(self) -> None:
        # The demo's users were there before the history begins.
        get_user_model().objects.filter(
            username__in=[u.get_username() for u in self.users.values()]
        ).update(date_joined=self.start)
        keys.ensure_development_keys()
        for feed in self.feeds:
            if not Feed.objects.filter(name=feed["name"]).exists():
                feed_create(actor=self.users["member-admin"], **feed)

    def _propose_create(
        self, analyst: Any, session: dt.datetime | None, decision: str, category_a: bool
    ) -> None:
        n = next(self._created)
        algos = ["md5", "sha1"] if n % 3 or category_a else ["pdq", "sha256"]
        if n % 17 == 0:
            algos.append("photodna")
        proposal = services.proposal_create_entry(
            actor=analyst,
            grading={
                "category": "A" if category_a else self.rng.choice(CATEGORIES),
                "age_group": self.rng.choice(AGE_GROUPS),
                "baseline": self.rng.choice([None, True, False]),
                "content_type": "video" if n % 11 == 0 else "image",
            },
            hashes=[{"algorithm": a, "value": synthetic_hash(self.values, a)} for a in algos],
            source=SOURCE,
            notes=NOTES,
            comment="demo data",
        )
        if session is not None:
            self._buckets.setdefault(session, []).append((proposal.pk, decision, ""))

    def _candidates(self) -> list[int]:
        waiting = set(
            Proposal.objects.filter(status=ProposalStatus.PENDING, entry__isnull=False).values_list(
                "entry_id", flat=True
            )
        )
        active = Entry.objects.filter(source=SOURCE, status=EntryStatus.ACTIVE)
        return [
            pk for pk in active.values_list("pk", flat=True) if pk not in waiting | self._reserved
        ]

    def _propose_change(self, kind: str, session: dt.datetime | None) -> None:
        candidates = self._candidates()
        if not candidates:
            return
        entry_id = self.rng.choice(candidates)
        analyst = self.rng.choice([self.users["analyst"], self.users["analyst2"]])
        if kind == "regrade":
            entry = Entry.objects.get(pk=entry_id)
            category = self.rng.choice([c for c in CATEGORIES if c != entry.category])
            proposal = services.proposal_regrade(
                actor=analyst,
                entry_id=entry_id,
                grading={"category": category},
                comment="Second assessment of the (synthetic) item: category corrected.",
            )
        else:
            proposal = services.proposal_retract(
                actor=analyst,
                entry_id=entry_id,
                reason=self.rng.choice(
                    [
                        "Duplicate of another entry (synthetic demo).",
                        "Source item re-assessed: not in scope (synthetic demo).",
                        "Hash taken from a corrupted file (synthetic demo).",
                    ]
                ),
            )
        if session is not None:
            self._buckets.setdefault(session, []).append((proposal.pk, "approve", ""))

    def _review_session(self, session: dt.datetime) -> None:
        decisions = self._buckets.pop(session, [])
        if not decisions:
            return
        # Reviewers take turns by day; neither ever proposes, so four-eyes always holds.
        reviewer = self.users["reviewer" if session.toordinal() % 2 else "reviewer2"]
        # A minute or two per proposal; seconds each through the first big batch.
        pace = (20, 240) if len(decisions) <= 10 else (5, 25)
        for proposal_id, decision, _ in decisions:
            self.clock.at(self.clock.now() + dt.timedelta(seconds=self.rng.randrange(*pace)))
            if decision == "approve":
                services.proposal_approve(actor=reviewer, proposal_id=proposal_id)
            else:
                services.proposal_reject(
                    actor=reviewer,
                    proposal_id=proposal_id,
                    reason=self.rng.choice(
                        [
                            "Hashes already listed under another entry.",
                            "Grading not supported by the assessment notes; please re-check.",
                            "Wrong algorithm chosen for these values.",
                        ]
                    ),
                )
        self.clock.at(self.clock.now() + dt.timedelta(minutes=1))
        self._cut()

    def _cut(self) -> None:
        """What the release task does after an approval: cut, then snapshots that are due."""
        if releases.release_cut() is None:
            return
        self._releases += 1
        for feed in distribution_selectors.feed_list_published():
            if releases.snapshot_due(feed):
                releases.snapshot_build(feed_id=feed.pk)

    def _resign(self) -> None:
        if distribution_selectors.feed_list_published().exists():
            releases.manifest_resign()

    def _create_member(self, plan: MemberPlan) -> None:
        admin = self.users["member-admin"]
        if Member.objects.filter(name=plan.name).exists():
            return
        member_services.member_create(actor=admin, name=plan.name, display_name=plan.display_name)
        for person, email, role in plan.contacts:
            member_services.contact_add(
                actor=admin, member_name=plan.name, name=person, email=email, role=role
            )
        if plan.licence_until is not None:
            member_services.licence_grant(
                actor=admin,
                member_name=plan.name,
                kind="photodna",
                reference=plan.licence_reference,
                valid_until=plan.licence_until,
            )
        for feed in plan.feeds:
            member_services.entitlement_grant(actor=admin, member_name=plan.name, feed=feed)

    def _create_client(self, state: _Client) -> None:
        admin = self.users["member-admin"]
        member, name = state.plan.member, state.plan.name
        member_services.client_create(actor=admin, member_name=member, name=name)
        row, state.token = member_services.token_create(
            actor=admin, member_name=member, client_name=name, scopes=SCOPES
        )
        state.token_id = row.pk
        if member == self.demo_member[0] and name == "edge-1":
            self._demo_token = state.token

    def _rotate_token(self, state: _Client) -> None:
        """The member asked for a new token (one that expires); the old one is revoked once
        the client uses the new one."""
        admin = self.users["member-admin"]
        member, name = state.plan.member, state.plan.name
        row, token = member_services.token_create(
            actor=admin, member_name=member, client_name=name, scopes=SCOPES, expires_in_days=365
        )
        old, state.token, state.token_id = state.token_id, token, row.pk
        member_services.token_revoke(actor=admin, member_name=member, token_id=old)

    def _principal(self, state: _Client) -> MemberPrincipal:
        principal, _ = token_authenticate(
            Request(self._request), state.token, malformed="demo token"
        )
        return principal

    def _sync(self, state: _Client, *, poll: bool = False) -> None:
        """One sync as the member client makes it: the plan, its bundles, then the ack.

        A sync with no release since the client's last one is skipped: it would only have
        been told "up to date" (``poll`` makes it anyway, so the client was seen lately)."""
        if state.releases_seen == self._releases and not poll:
            return
        state.releases_seen = self._releases
        plan_ = state.plan
        try:
            principal = self._principal(state)
        except PermissionDenied:
            return  # the member is suspended: refused, as the API would refuse it
        now = self.clock.now()
        stuck = plan_.stuck_from is not None and now >= plan_.stuck_from
        wrong = plan_.mismatch_from is not None and now >= plan_.mismatch_from
        for feed in member_selectors.entitled_feeds(principal.member):
            held = state.held.get(feed.name, 0)
            plan = plans.plan_build(feed, held)
            if plan.status == "up_to_date" and not (stuck and held):
                continue
            label, prefix = principal.label, principal.token.prefix
            client_id = principal.client.pk
            sync_services.record_plan_served(
                actor_label=label, client_id=client_id, feed=feed, plan=plan, token_prefix=prefix
            )
            if stuck:
                # Downloads fail on the client's side; it reports what it still holds.
                if held:
                    digest = plans.state_digest_of(feed, held) or ""
                    sync_services.ack_record(
                        principal=principal, feed=feed, version=held, state_digest=digest
                    )
                continue
            for step in plan.steps:
                sync_services.record_bundle_served(
                    actor_label=label,
                    client_id=client_id,
                    sha256=step.sha256,
                    feeds=[feed.name],
                    token_prefix=prefix,
                )
            digest = plans.state_digest_of(feed, plan.version) or ""
            if wrong:
                digest = hashlib.sha256(f"corrupted store {digest}".encode()).hexdigest()
            sync_services.ack_record(
                principal=principal, feed=feed, version=plan.version, state_digest=digest
            )
            state.held[feed.name] = plan.version

    def _suspend(self, name: str, reason: str) -> None:
        member_services.member_suspend(actor=self.users["member-admin"], name=name, reason=reason)

    def _reinstate(self, name: str, reason: str) -> None:
        member_services.member_reinstate(actor=self.users["member-admin"], name=name, reason=reason)

    # --- disputes ------------------------------------------------------------------------------

    def _disputed_entry(self, member: str) -> tuple[int, str, str] | None:
        """An active entry with an MD5 hash in a feed the member receives, not otherwise used."""
        feeds = [f.pk for f in member_selectors.entitled_feeds(Member.objects.get(name=member))]
        for entry_id in self._candidates():
            entry = Entry.objects.get(pk=entry_id)
            for h in entry.hashes.filter(algorithm="md5"):
                value = ALGORITHMS["md5"].canonical(bytes(h.value))
                found = member_selectors.feed_entries_for(feeds, [("md5", bytes(h.value))])
                if found.get(("md5", bytes(h.value))):
                    return entry_id, "md5", value
        return None

    def _dispute(self, outcome: str) -> None:
        client = {"upheld": "edge-a", "dismissed": "edge-1", "open": "edge-2"}[outcome]
        member = "lumen-social" if outcome == "upheld" else "northwind-hosting"
        state = self._clients[(member, client)]
        found = self._disputed_entry(member)
        if found is None:
            return
        entry_id, algorithm, value = found
        self._reserved.add(entry_id)
        feedback = sync_services.feedback_create(
            principal=self._principal(state),
            algorithm=algorithm,
            value=value,
            kind="false_positive",
            reason={
                "upheld": "Matched a stock photo of a landscape in our upload queue; we believe "
                "this hash is wrong (synthetic demo).",
                "dismissed": "Customer says the matched file is their own holiday video "
                "(synthetic demo).",
                "open": "Matched an icon shipped with a popular app; please re-check "
                "(synthetic demo).",
            }[outcome],
        )
        self._disputes[outcome] = (feedback.pk, entry_id)

    def _retract_disputed(self) -> None:
        if "upheld" not in self._disputes:
            return
        _, entry_id = self._disputes["upheld"]
        proposal = services.proposal_retract(
            actor=self.users["analyst"],
            entry_id=entry_id,
            reason="Member dispute upheld: the source item is not abuse material (synthetic demo).",
        )
        self._retracted_entry = entry_id
        self._buckets.setdefault(self.retraction_session, []).append((proposal.pk, "approve", ""))

    def _resolve(self, outcome: str) -> None:
        if outcome not in self._disputes:
            return
        feedback_id, _ = self._disputes[outcome]
        member_services.feedback_resolve(
            actor=self.users["analyst2"],
            feedback_id=feedback_id,
            status=outcome,
            resolution={
                "upheld": "Re-assessed: not abuse material. Entry retracted (synthetic demo).",
                "dismissed": "Re-assessed against the original item: the listing stands "
                "(synthetic demo).",
            }[outcome],
        )


def build_history(**kwargs: Any) -> HistorySummary:
    """Plan and play the whole story in one transaction: a seeding stopped half-way leaves no
    half history behind (the next ``make run`` starts it again)."""
    with transaction.atomic():
        return DemoHistory(**kwargs).play()
