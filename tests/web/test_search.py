"""The search page (``/search/``): find the entries holding a hash pasted in any accepted form
(POST, answered directly: the hash never reaches a URL, a title or a log), and browse the list
by grading, status, date and author with keyset paging. Synthetic hashes only."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
from typing import Any

import pytest
from django.test import Client

from hashlist import services
from hashlist.models import Entry
from hashsync_client.algorithms import get_algorithm
from tests.conftest import synthetic
from tests.factories import approved_entry
from tests.web.conftest import sign_in

pytestmark = pytest.mark.django_db


def _page(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.content[:300]
    return response.content.decode()


def _entry_with(analyst: Any, reviewer: Any, algorithm: str, value: str, **grading: Any) -> Entry:
    return approved_entry(
        analyst, reviewer, hashes=[{"algorithm": algorithm, "value": value}], **grading
    )


def _results(page: str) -> list[int]:
    """Entry ids of the hash search's result table (before the browse section)."""
    found = page.split('id="browse"')[0]
    return [int(n) for n in re.findall(r'href="/entries/(\d+)/"', found)]


def _listed(page: str) -> list[int]:
    """Entry ids of the browse table, in order."""
    found = page.split('id="browse"')[1]
    return [int(n) for n in re.findall(r'href="/entries/(\d+)/"', found)]


# --- Who may search --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("analyst", 200),
        ("reviewer", 200),
        ("auditor", 200),
        ("member_admin", 403),
        ("outsider", 403),
    ],
)
def test_search_is_for_roles_that_read_entries(client_as, role, status):
    assert client_as(role).get("/search/").status_code == status
    assert client_as(role).post("/search/", {"value": synthetic("md5")}).status_code == status


def test_anonymous_visitors_are_sent_to_sign_in(client_as):
    for response in (
        client_as("anonymous").get("/search/"),
        client_as("anonymous").post("/search/", {"value": synthetic("md5")}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


# --- Searching by hash -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "form"),
    [
        ("md5", lambda raw, text: text.upper()),
        ("sha1", lambda raw, text: f"  {text}\n"),
        ("sha256", lambda raw, text: base64.b64encode(raw).decode()),
        ("photodna", lambda raw, text: text),
    ],
    ids=["hex-upper-case", "hex-with-spaces", "base64", "photodna-decimals"],
)
def test_a_hash_in_any_accepted_form_finds_its_entry(client_as, analyst, reviewer, algorithm, form):
    text = synthetic(algorithm)
    entry = _entry_with(analyst, reviewer, algorithm, text)
    raw = get_algorithm(algorithm).parse(text)

    page = _page(client_as("analyst").post("/search/", {"value": form(raw, text)}))

    assert _results(page) == [entry.pk]
    assert "1 entry holds this hash" in page
    assert get_algorithm(algorithm).label in page


def test_the_algorithm_select_narrows_an_ambiguous_value(client_as, analyst, reviewer):
    text = synthetic("sha256")
    entry = _entry_with(analyst, reviewer, "sha256", text)
    client = client_as("analyst")

    as_pdq = _page(client.post("/search/", {"value": text, "algorithm": "pdq"}))
    as_any = _page(client.post("/search/", {"value": text, "algorithm": ""}))

    assert _results(as_pdq) == []
    assert "It was read as PDQ, and no entry has it" in as_pdq
    assert _results(as_any) == [entry.pk]


def test_nothing_found_says_what_the_value_was_read_as(client_as):
    page = _page(client_as("reviewer").post("/search/", {"value": synthetic("pdq")}))

    assert "No entry holds this hash" in page
    assert "read as SHA-256 and as PDQ (the text fits each)" in page


def test_a_retracted_entry_is_still_found_and_says_so(client_as, analyst, reviewer):
    text = synthetic("md5")
    entry = _entry_with(analyst, reviewer, "md5", text)
    retract = services.proposal_retract(actor=analyst, entry_id=entry.pk, reason="Wrong.")
    services.proposal_approve(actor=reviewer, proposal_id=retract.pk)

    page = _page(client_as("auditor").post("/search/", {"value": text}))

    assert _results(page) == [entry.pk]
    assert '<span class="badge bad">Retracted</span>' in page.split('id="browse"')[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"value": "not a hash"}, "That is not a hash in any accepted form"),
        ({"value": "ab" * 17}, "That is not a hash in any accepted form"),
        ({"value": "ab" * 16, "algorithm": "sha1"}, "40 hexadecimal characters"),
        ({"value": ""}, "Paste the hash to look for."),
        ({"value": "a" * 5000}, "at most 4096 characters"),
        ({"value": synthetic("md5"), "algorithm": "crc32"}, "Select a valid choice"),
    ],
    ids=["words", "wrong-length", "wrong-algorithm", "empty", "too-long", "unknown-algorithm"],
)
def test_a_value_that_is_not_a_hash_is_refused_next_to_the_field(client_as, data, message):
    page = _page(client_as("analyst").post("/search/", data), status=400)

    field = page.split('class="field has-error"')[1]
    error = re.search(r'<p class="error"[^>]*>(.*?)</p>', field, re.S)
    assert error is not None and message in error.group(1)
    assert "There is a problem" in page  # and summarised at the top
    assert "holds this hash" not in page and "No entry holds" not in page


def test_the_hash_never_reaches_a_url_the_title_or_a_log(client_as, analyst, reviewer, caplog):
    text = synthetic("sha1")
    _entry_with(analyst, reviewer, "sha1", text)
    caplog.set_level(logging.DEBUG)
    client = client_as("analyst")

    found = client.post("/search/", {"value": text.upper()})
    refused = client.post("/search/", {"value": text + "zz"})

    for response, status in ((found, 200), (refused, 400)):
        page = _page(response, status)
        assert not response.has_header("Location")  # answered directly, never redirected
        title = re.search(r"<title>(.*?)</title>", page, re.S)
        assert title is not None and text not in title.group(1).lower()
        links = re.findall(r'(?:href|action|hx-get)="([^"]*)"', page)
        assert links and not any(text in link.lower() for link in links)
    for record in caplog.records:
        assert text not in record.getMessage().lower()


def test_a_hash_in_the_query_string_is_not_searched(client_as, analyst, reviewer):
    text = synthetic("md5")
    _entry_with(analyst, reviewer, "md5", text)

    page = _page(client_as("analyst").get(f"/search/?value={text}"))

    assert _results(page) == []
    assert "holds this hash" not in page


def test_searching_needs_the_csrf_token(analyst):
    client = sign_in(Client(enforce_csrf_checks=True), analyst)
    value = synthetic("md5")

    refused = client.post("/search/", {"value": value})
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get("/search/").text)
    assert token is not None
    accepted = client.post("/search/", {"value": value, "csrfmiddlewaretoken": token.group(1)})

    assert refused.status_code == 403
    assert accepted.status_code == 200


# --- Browsing the list -------------------------------------------------------------------


def test_the_list_shows_newest_first_with_its_grading(client_as, analyst, reviewer):
    older = approved_entry(analyst, reviewer, category="B", age_group="0-2")
    newer = approved_entry(analyst, reviewer, category="C", age_group="16-17")

    page = _page(client_as("analyst").get("/search/"))

    assert _listed(page) == [newer.pk, older.pk]
    assert "<td>0–2</td>" in page and "<td>16–17</td>" in page


def test_a_new_install_has_a_designed_empty_list(client_as):
    page = _page(client_as("auditor").get("/search/"))

    assert "The list has no entries yet" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category=B", ["b"]),
        ("age_group=0-2", ["b"]),
        ("status=retracted", ["retracted"]),
        ("category=A&status=active", ["a"]),
        ("added_by=analyst2", ["b"]),
    ],
)
def test_filters_narrow_the_list(client_as, analyst, analyst2, reviewer, query, expected):
    entries = {
        "a": approved_entry(analyst, reviewer, category="A"),
        "b": approved_entry(analyst2, reviewer, category="B", age_group="0-2"),
        "retracted": approved_entry(analyst, reviewer, category="A"),
    }
    retract = services.proposal_retract(
        actor=analyst, entry_id=entries["retracted"].pk, reason="Wrong."
    )
    services.proposal_approve(actor=reviewer, proposal_id=retract.pk)

    page = _page(client_as("analyst").get(f"/search/?{query}"))

    assert sorted(_listed(page)) == sorted(entries[name].pk for name in expected)


def test_the_date_range_takes_whole_days_with_the_end_day_included(client_as, analyst, reviewer):
    days = {}
    for day in (1, 2, 3):
        entry = approved_entry(analyst, reviewer)
        when = dt.datetime(2026, 3, day, 23, 59, tzinfo=dt.UTC)
        Entry.objects.filter(pk=entry.pk).update(created_at=when)
        days[day] = entry.pk

    page = _page(client_as("analyst").get("/search/?added_from=2026-03-02&added_to=2026-03-02"))

    assert _listed(page) == [days[2]]


def test_no_match_for_the_filters_has_its_own_empty_state(client_as, analyst, reviewer):
    approved_entry(analyst, reviewer, category="A")

    page = _page(client_as("analyst").get("/search/?category=C"))

    assert "No entry matches these filters" in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("added_from=2026-03-05&added_to=2026-03-01", "The end date is before the start date."),
        ("added_from=2026-13-45", "Enter a valid date."),
        ("added_to=9999-12-31", None),
        ("category=Z", "Select a valid choice"),
        ("added_by=nobody", "Select a valid choice"),
        ("after=abc", "That page link is not valid"),
        ("after=-1", "That page link is not valid"),
        ("after=99999999999999999999", "That page link is not valid"),
        ("sort=sideways", "Select a valid choice"),
    ],
)
def test_bad_filters_are_refused_next_to_the_field_never_a_500(client_as, query, message):
    response = client_as("analyst").get(f"/search/?{query}")

    if message is None:
        _page(response)
    else:
        assert message in _page(response, status=400)


def test_the_list_pages_by_keyset_and_keeps_the_filters(client_as, analyst, reviewer, monkeypatch):
    monkeypatch.setattr("web.views.search.PAGE_SIZE", 2)
    ids = [approved_entry(analyst, reviewer, category="B").pk for _ in range(3)]
    approved_entry(analyst, reviewer, category="A")
    client = client_as("analyst")

    first = _page(client.get("/search/?category=B"))
    next_link = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_link is not None
    second = _page(client.get(next_link.group(1).replace("&amp;", "&")))

    assert _listed(first) == [ids[2], ids[1]]
    assert "category=B" in next_link.group(1) and f"after={ids[1]}" in next_link.group(1)
    assert _listed(second) == [ids[0]]
    assert "End of the list." in second and "First page" in second


def test_the_added_column_sorts_oldest_first(client_as, analyst, reviewer):
    ids = [approved_entry(analyst, reviewer).pk for _ in range(3)]
    client = client_as("reviewer")

    newest = _page(client.get("/search/"))
    toggle = re.search(r'aria-sort="descending"><a href="([^"]+)"', newest)
    assert toggle is not None
    oldest = _page(client.get(toggle.group(1).replace("&amp;", "&")))

    assert _listed(newest) == ids[::-1]
    assert _listed(oldest) == ids
    assert 'aria-sort="ascending"' in oldest
