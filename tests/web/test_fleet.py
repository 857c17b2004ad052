"""The fleet view (``/fleet/``, web/views/fleet.py over members/fleet.py): who may see it,
each client's state per feed, the "missed the retraction" and "not holding release N"
filters, sorting, paging, and bad query parameters (never a 500). Synthetic data only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from members import fleet
from tests.factories import member_with_token
from tests.web.fleet_helpers import FEED, build_fleet

pytestmark = pytest.mark.django_db

URL = "/fleet/"


@pytest.fixture
def world(analyst: Any, reviewer: Any, member_admin: Any) -> Any:
    return build_fleet(analyst, reviewer, member_admin)


def _members(response: Any) -> list[str]:
    """The member names of the table's rows, in order."""
    body = response.content.decode()
    table = body[body.index("<tbody>") : body.index("</tbody>")] if "<tbody>" in body else ""
    return re.findall(r'<span class="muted small">([a-z0-9-]+)</span>', table)


@pytest.mark.parametrize("role", ["member_admin", "auditor"])
def test_member_admins_and_auditors_see_the_fleet(client_as, world, role):
    response = client_as(role).get(URL)

    assert response.status_code == 200
    assert sorted(_members(response)) == ["acme", "globex", "hooli", "initech", "umbrella"]
    assert b"<title>Fleet" in response.content


@pytest.mark.parametrize("role", ["analyst", "reviewer", "outsider"])
def test_other_roles_are_refused(client_as, world, role):
    response = client_as(role).get(URL)

    assert response.status_code == 403


def test_the_nav_row_shows_for_member_admins_only(client_as, world):
    assert b'href="/fleet/"' in client_as("member_admin").get("/").content
    assert b'href="/fleet/"' not in client_as("analyst").get("/").content


def test_each_client_has_its_status(world):
    rows = {r["member_name"]: r for r in fleet.fleet_rows()}

    assert {name: r["status"] for name, r in rows.items()} == {
        "acme": fleet.CURRENT,
        "globex": fleet.BEHIND,
        "initech": fleet.STALE,
        "umbrella": fleet.MISMATCH,
        "hooli": fleet.NEVER_ACKED,
    }
    assert {name: r["behind_versions"] for name, r in rows.items()} == {
        "acme": 0,
        "globex": 1,
        "initech": 2,
        "umbrella": 0,
        "hooli": 4,
    }
    assert rows["acme"]["behind_since"] is None
    assert rows["initech"]["behind_since"] < rows["globex"]["behind_since"]
    assert rows["acme"]["last_seen"] is not None
    assert rows["umbrella"]["client_mismatch_at"] is not None


def test_missed_retraction_picks_out_clients_without_the_retraction_release(client_as, world):
    rows = {r["member_name"]: r for r in fleet.fleet_rows()}
    assert {n for n, r in rows.items() if r["missed_retraction"]} == {"initech", "hooli"}
    assert rows["initech"]["retraction_version"] == world.retraction.version

    response = client_as("member_admin").get(URL, {"status": "missed_retraction"})

    assert response.status_code == 200
    assert sorted(_members(response)) == ["hooli", "initech"]
    assert b"Missed retraction 3" in response.content
    assert b"release 3" in response.content  # the notice names the newest retraction


def test_not_holding_a_release_lists_who_lacks_it(client_as, world):
    response = client_as("member_admin").get(URL, {"release": world.retraction.version})

    assert response.status_code == 200
    assert sorted(_members(response)) == ["hooli", "initech"]
    assert b"Not holding release 3" in response.content

    newest = client_as("member_admin").get(URL, {"release": world.newest.version})
    assert sorted(_members(newest)) == ["globex", "hooli", "initech"]


def test_a_release_that_did_not_change_a_feed_leaves_its_clients_out(
    client_as, world, analyst, reviewer, member_admin
):
    from distribution import releases
    from distribution.models import Feed
    from tests.factories import approved_entry

    Feed.objects.create(name="sha1-all", algorithms=["sha1"])
    approved_entry(analyst, reviewer)
    releases.release_cut()  # publishes sha1-all for the first time
    approved_entry(analyst, reviewer)  # md5 only: sha1-all does not change
    release = releases.release_cut()
    member_with_token(member_admin, name="stark", feeds=("sha1-all",))

    response = client_as("member_admin").get(URL, {"release": release.version})

    assert "stark" not in _members(response)


@pytest.mark.parametrize(
    ("status", "members"),
    [
        ("current", ["acme"]),
        ("behind", ["globex"]),
        ("stale", ["initech"]),
        ("mismatch", ["umbrella"]),
        ("never_acked", ["hooli"]),
    ],
)
def test_filter_by_status(client_as, world, status, members):
    response = client_as("auditor").get(URL, {"status": status})

    assert response.status_code == 200
    assert _members(response) == members


def test_filter_by_member_shows_only_its_clients_without_the_member_column(client_as, world):
    response = client_as("member_admin").get(URL, {"member": "globex"})

    assert response.status_code == 200
    body = response.content.decode()
    assert "edge-1" in body and _members(response) == []  # no member column
    assert body.count('<tr class="fleet-') == 1


@pytest.mark.parametrize(
    ("sort", "first"),
    [
        ("member", "acme"),
        ("-member", "umbrella"),
        ("behind_versions", "hooli"),
        ("behind_time", "hooli"),
        ("last_seen", "hooli"),
    ],
)
def test_sorting(client_as, world, sort, first):
    response = client_as("member_admin").get(URL, {"sort": sort})

    assert response.status_code == 200
    assert _members(response)[0] == first


def test_behind_time_puts_the_longest_behind_first_and_current_last(world):
    order = [r["member_name"] for r in fleet.fleet_rows(sort="behind_time")]
    # hooli lacks release 1 (the oldest), initech release 3, globex release 4.
    assert order[:3] == ["hooli", "initech", "globex"]
    assert set(order[3:]) == {"acme", "umbrella"}


def test_counts_per_status(world):
    counts = fleet.fleet_counts(fleet.fleet_rows())

    assert counts["total"] == 5
    assert [counts[s] for s in fleet.STATUS_LABELS] == [1, 1, 1, 1, 1]
    assert (counts["missed_retraction"], counts["missed_members"]) == (2, 2)


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "nonsense"},
        {"status": "sideways"},
        {"member": "nobody"},
        {"member": "x" * 5000},
        {"release": "abc"},
        {"release": "99999999999999999999999"},
        {"release": "-1"},
        {"member": "a\x00b"},
    ],
)
def test_bad_filters_are_named_on_a_normal_page(client_as, world, params):
    response = client_as("member_admin").get(URL, params)

    assert response.status_code == 400
    assert b"There is a problem" in response.content
    assert len(_members(response)) == 5  # the bad filter is ignored, the rest still shown


@pytest.mark.parametrize("page", ["abc", "0", "-3", "999", "1" * 40, ""])
def test_junk_page_numbers_give_a_normal_page(client_as, world, page):
    response = client_as("member_admin").get(URL, {"page": page})

    assert response.status_code == 200
    assert len(_members(response)) == 5


def test_many_clients_page_and_cost_a_fixed_number_of_queries(client_as, world, member_admin):
    from members import services as member_services

    for n in range(60):
        member_services.client_create(actor=member_admin, member_name="acme", name=f"node-{n}")
    user_client = client_as("member_admin")
    user_client.get(URL)  # warm the session and permission caches

    with CaptureQueriesContext(connection) as queries:
        first = user_client.get(URL)
    second = user_client.get(URL, {"page": 2})

    assert b"page 1 of 2" in first.content
    assert b"page 2 of 2" in second.content
    assert len(_members(second)) == 65 - 50
    # Session, user, permissions, the member list, releases, retractions and the fleet's
    # count, page and status counts: a fixed number whatever the number of clients.
    assert len(queries) <= 16, [q["sql"][:120] for q in queries]


def test_the_empty_fleet_says_what_to_do(client_as):
    response = client_as("member_admin").get(URL)

    assert response.status_code == 200
    assert b"No member organisation exists yet" in response.content


def test_a_member_without_clients_or_entitlements_says_so(client_as, member_admin):
    from members import services as member_services

    member_services.member_create(actor=member_admin, name="newco", display_name="NewCo")
    response = client_as("member_admin").get(URL)

    assert b"No member has a sync client with an entitled feed yet" in response.content


def test_member_fleet_is_one_members_rows(world):
    rows = fleet.member_fleet("initech")

    assert [(r["client_name"], r["feed_name"], r["held_version"]) for r in rows] == [
        ("edge-1", FEED, 2)
    ]


def test_a_retraction_counts_only_for_feeds_that_listed_the_entry(
    world, analyst, reviewer, member_admin
):
    from distribution import releases
    from distribution.models import Feed
    from hashlist import services
    from tests.conftest import synthetic
    from tests.factories import approved_entry

    sha1 = Feed.objects.create(name="sha1-all", algorithms=["sha1"])
    md5_only = approved_entry(analyst, reviewer)
    approved_entry(analyst, reviewer, hashes=[{"algorithm": "sha1", "value": synthetic("sha1")}])
    releases.release_cut()  # publishes sha1-all
    retract = services.proposal_retract(actor=analyst, entry_id=md5_only.pk, reason="synthetic")
    services.proposal_approve(actor=reviewer, proposal_id=retract.pk)
    release = releases.release_cut()
    member_with_token(member_admin, name="stark", feeds=("sha1-all",))

    found = fleet.retraction_versions()

    assert found[Feed.objects.get(name=FEED).pk] == release.version
    assert sha1.pk not in found
    (stark,) = fleet.member_fleet("stark")
    assert stark["missed_retraction"] is False


def test_the_csv_has_every_filtered_row_without_paging(client_as, world):
    import csv
    import io

    response = client_as("auditor").get("/fleet/fleet.csv", {"status": "missed_retraction"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["member"], r["status"]) for r in lines] == [
        ("hooli", "never_acked"),
        ("initech", "stale"),
    ]
    assert lines[1]["missed_retraction_version"] == str(world.retraction.version)


def test_the_csv_ignores_a_bad_filter(client_as, world):
    response = client_as("auditor").get("/fleet/fleet.csv", {"sort": "bogus", "release": "x"})

    assert response.status_code == 200
    assert len(b"".join(response.streaming_content).splitlines()) == 6


def test_the_page_links_its_csv_with_the_same_filters(client_as, world):
    response = client_as("member_admin").get(URL, {"status": "stale"})

    assert b'href="/fleet/fleet.csv?status=stale"' in response.content
