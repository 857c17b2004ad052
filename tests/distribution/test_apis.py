"""The staff API of distribution (``/api/v1/feeds/``, ``/api/v1/releases/``): which role may
call which endpoint, creating, publishing and retiring feeds, and bad input of every shape.

Every error must be ``{"error": {"code", "message", ...}}`` with a 4xx status; nothing may
answer 500. Hashes are synthetic random values.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from distribution import releases, services, urls
from distribution.models import BundleObject, Feed, Manifest, Release
from hashsync.errors import InvalidInput
from hashsync.roles import MEMBER_ADMIN
from tests.conftest import synthetic
from tests.factories import approved_entry
from tests.role_matrix import ROLES, assert_role_refused, served
from tests.utils import assert_error

pytestmark = pytest.mark.django_db

VIEWERS = frozenset({"analyst", "reviewer", "member_admin", "auditor"})
MANAGERS = frozenset({"member_admin"})
# A bundle is a feed's hashes: only roles that may read entries (not member administrators).
ENTRY_READERS = frozenset({"analyst", "reviewer", "auditor"})


# --- helpers ------------------------------------------------------------------------------------


def _last_seq() -> int:
    last = AuditEvent.objects.order_by("-seq").first()
    return last.seq if last else 0


def _content(response: Any) -> bytes:
    """The body of a plain or a streamed response (closing the file a stream reads)."""
    if not response.streaming:
        return response.content
    try:
        return b"".join(response.streaming_content)
    finally:
        response.close()


def _body_text(response: Any) -> str:
    return json.dumps(response.json(), ensure_ascii=False)


def _garbage(length: int) -> str:
    """A made-up lowercase value no filter knows (and so long it must not come back)."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(length))


@dataclass(frozen=True)
class World:
    """A published feed (created by another member administrator) and one release."""

    feed: Feed
    release: Release
    owner: Any
    bundle_sha256: str


@pytest.fixture
def feed_owner(db: None, make_user: Callable[..., Any]) -> Any:
    return make_user(MEMBER_ADMIN, "feed-owner")


@pytest.fixture
def world(feed_owner: Any) -> World:
    feed = services.feed_create(actor=feed_owner, name="world", algorithms=["md5"])
    release = releases.release_cut()
    assert release is not None
    feed.refresh_from_db()
    bundle = BundleObject.objects.order_by("sha256").first()
    assert bundle is not None
    return World(feed, release, feed_owner, bundle.sha256)


# --- the role matrix ----------------------------------------------------------------------------

Request = tuple[str, Any]  # path, body


@dataclass(frozen=True)
class Endpoint:
    url_name: str
    method: str
    allowed: frozenset[str]
    status: int  # what an allowed role gets for the request ``build`` makes
    build: Callable[[World, str], Request]


ENDPOINTS: dict[str, Endpoint] = {
    "feed-list": Endpoint(
        "feed-list", "get", VIEWERS, 200, lambda w, role: (reverse("feed-list"), None)
    ),
    "feed-create": Endpoint(
        "feed-list",
        "post",
        MANAGERS,
        201,
        lambda w, role: (
            reverse("feed-list"),
            {"name": f"made-by-{role.replace('_', '-')}", "algorithms": ["md5", "sha1"]},
        ),
    ),
    "feed-detail": Endpoint(
        "feed-detail",
        "get",
        VIEWERS,
        200,
        lambda w, role: (reverse("feed-detail", kwargs={"name": w.feed.name}), None),
    ),
    "feed-retire": Endpoint(
        "feed-retire",
        "post",
        MANAGERS,
        200,
        lambda w, role: (reverse("feed-retire", kwargs={"name": w.feed.name}), {}),
    ),
    "release-list": Endpoint(
        "release-list", "get", VIEWERS, 200, lambda w, role: (reverse("release-list"), None)
    ),
    "feed-manifest": Endpoint(
        "feed-manifest",
        "get",
        VIEWERS,
        200,
        lambda w, role: (reverse("feed-manifest", kwargs={"name": w.feed.name}), None),
    ),
    "keyring": Endpoint("keyring", "get", VIEWERS, 200, lambda w, role: (reverse("keyring"), None)),
    "bundle": Endpoint(
        "bundle",
        "get",
        ENTRY_READERS,
        200,
        lambda w, role: (reverse("bundle", kwargs={"sha256": w.bundle_sha256}), None),
    ),
}


def test_role_matrix_covers_every_endpoint_and_method():
    # Member (token) endpoints have their own matrix in tests/sync/test_auth.py.
    assert served(urls.urlpatterns) == {(e.url_name, e.method) for e in ENDPOINTS.values()}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_role_gets_exactly_the_endpoints_it_is_entitled_to(name, role, request, api, world):
    endpoint = ENDPOINTS[name]
    user = None if role == "anonymous" else request.getfixturevalue(role)
    path, body = endpoint.build(world, role)
    before = (_last_seq(), sorted(Feed.objects.values_list("name", "active")))

    response = getattr(api(user), endpoint.method)(path, body, format="json")

    if role in endpoint.allowed:
        assert response.status_code == endpoint.status, _content(response)[:500]
        if response["Content-Type"].startswith("application/json"):
            assert "error" not in response.json()
        else:  # a bundle, streamed
            assert _content(response)
        return
    assert_role_refused(response, role)
    # A refused request changes nothing: no audit event, no new feed, no feed retired.
    assert (_last_seq(), sorted(Feed.objects.values_list("name", "active"))) == before


def test_allowed_writes_in_the_matrix_take_effect(api, member_admin, world):
    """The matrix checks statuses; this checks the two writes in it really happened."""
    client = api(member_admin)
    path, body = ENDPOINTS["feed-create"].build(world, "member_admin")
    assert client.post(path, body, format="json").status_code == 201
    assert Feed.objects.get(name="made-by-member-admin").algorithms == ["md5", "sha1"]

    path, body = ENDPOINTS["feed-retire"].build(world, "member_admin")
    assert client.post(path, body, format="json").status_code == 200
    world.feed.refresh_from_db()
    assert world.feed.active is False


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/api/v1/feeds/"),
        ("delete", "/api/v1/feeds/"),
        ("post", "/api/v1/feeds/world/"),
        ("delete", "/api/v1/feeds/world/"),
        ("patch", "/api/v1/feeds/world/"),
        ("get", "/api/v1/feeds/world/retire/"),
        ("post", "/api/v1/releases/"),
    ],
)
def test_wrong_method_is_refused_with_method_not_allowed(api, member_admin, world, method, path):
    before = _last_seq()
    response = getattr(api(member_admin), method)(path, {"name": "other"}, format="json")
    assert_error(response, 405, "method_not_allowed")
    assert _last_seq() == before
    world.feed.refresh_from_db()
    assert world.feed.active is True


# --- creating, publishing and retiring feeds ----------------------------------------------------

FILTERS = {
    "algorithms": ["md5"],
    "categories": ["A"],
    "age_groups": ["7-10"],
    "industry_classes": [],
    "content_types": ["image"],
    "baseline_only": False,
}


def test_member_admin_creates_a_feed_and_the_next_release_publishes_it(
    api, member_admin, analyst, reviewer
):
    md5 = synthetic("md5")
    approved_entry(
        analyst,
        reviewer,
        hashes=[
            {"algorithm": "md5", "value": md5},
            {"algorithm": "sha1", "value": synthetic("sha1")},
        ],
    )
    approved_entry(analyst, reviewer, category="B")  # outside the feed's categories
    client = api(member_admin)

    created = client.post(
        "/api/v1/feeds/",
        {"name": "md5-category-a", "description": "  synthetic test feed  ", **FILTERS},
        format="json",
    )

    assert created.status_code == 201, created.content
    body = created.json()
    assert {k: body[k] for k in FILTERS} == FILTERS
    assert body["name"] == "md5-category-a"
    assert body["description"] == "synthetic test feed"
    assert (body["active"], body["published"], body["version"], body["entry_count"]) == (
        True,
        False,
        0,
        0,
    )
    assert body["latest_manifest_sha256"] is None

    release = releases.release_cut()

    assert release is not None and release.version > 0
    detail = client.get("/api/v1/feeds/md5-category-a/")
    assert detail.status_code == 200
    published = detail.json()
    assert published["published"] is True
    assert published["version"] == release.version
    assert published["entry_count"] == 1  # the md5 hash of the category A entry only
    feed = Feed.objects.get(name="md5-category-a")
    latest = Manifest.objects.filter(feed=feed).order_by("-id").first()
    assert latest is not None
    assert published["latest_manifest_sha256"] == latest.sha256
    assert len(latest.sha256) == 64
    listed = client.get("/api/v1/feeds/").json()["results"]
    assert [f for f in listed if f["name"] == "md5-category-a"] == [published]
    versions = [r["version"] for r in client.get("/api/v1/releases/").json()["results"]]
    assert versions == [release.version]


def test_creating_a_feed_is_on_the_audit_trail(api, member_admin):
    before = _last_seq()
    response = api(member_admin).post(
        "/api/v1/feeds/", {"name": "audited", "categories": ["B", "A"]}, format="json"
    )
    assert response.status_code == 201, response.content
    [event] = AuditEvent.objects.filter(seq__gt=before)
    assert (event.action, event.object_type, event.object_id) == ("feed.create", "feed", "audited")
    assert (event.actor, event.actor_id) == ("member-admin", member_admin.pk)
    assert event.after["categories"] == ["A", "B"]  # stored in canonical order
    assert event.after["algorithms"] == []


def test_duplicate_feed_name_is_refused_with_feed_exists(api, member_admin, world):
    before = (_last_seq(), Feed.objects.count())
    response = api(member_admin).post(
        "/api/v1/feeds/", {"name": world.feed.name, "algorithms": ["sha1"]}, format="json"
    )
    error = assert_error(response, 409, "feed_exists")
    assert world.feed.name in error["message"]
    assert (_last_seq(), Feed.objects.count()) == before
    world.feed.refresh_from_db()
    assert world.feed.algorithms == ["md5"]  # the existing feed is untouched


def test_retired_feed_is_inactive_and_retiring_it_again_conflicts(api, member_admin, world):
    client = api(member_admin)
    retired = client.post(f"/api/v1/feeds/{world.feed.name}/retire/", {}, format="json")
    assert retired.status_code == 200, retired.content
    assert retired.json()["active"] is False
    assert client.get(f"/api/v1/feeds/{world.feed.name}/").json()["active"] is False
    events = AuditEvent.objects.filter(action="feed.retire", object_id=world.feed.name)
    assert events.count() == 1
    before = _last_seq()

    again = client.post(f"/api/v1/feeds/{world.feed.name}/retire/", {}, format="json")

    assert_error(again, 409, "feed_retired")
    assert _last_seq() == before


def test_retired_feed_is_not_published_by_later_releases(
    api, member_admin, world, analyst, reviewer
):
    api(member_admin).post(f"/api/v1/feeds/{world.feed.name}/retire/", {}, format="json")
    approved_entry(analyst, reviewer)  # an md5 entry the feed would admit

    release = releases.release_cut()

    assert release is not None
    world.feed.refresh_from_db()
    assert world.feed.version == world.release.version < release.version
    assert world.feed.entry_count == 0


@pytest.mark.parametrize(
    ("method", "template"),
    [("get", "/api/v1/feeds/{}/"), ("post", "/api/v1/feeds/{}/retire/")],
)
@pytest.mark.parametrize("name", ["no-such-feed", "a" * 64, "a" * 300, "Upper", "x%00y", "-"])
def test_unknown_feed_is_not_found(api, member_admin, world, method, template, name):
    before = _last_seq()
    response = getattr(api(member_admin), method)(template.format(name), {}, format="json")
    assert_error(response, 404, "not_found")
    assert _last_seq() == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/feeds/no-such-feed/manifest/",
        "/api/v1/feeds/unpublished/manifest/",
        "/api/v1/bundles/" + "0" * 64 + "/",
        "/api/v1/bundles/" + "A" * 64 + "/",
        "/api/v1/bundles/not-a-digest/",
        "/api/v1/bundles/..%2F..%2Fetc%2Fpasswd/",
        "/api/v1/bundles/" + "a" * 300 + "/",
    ],
)
def test_unknown_manifest_or_bundle_is_not_found(api, auditor, world, path):
    services.feed_create(actor=world.owner, name="unpublished")
    assert_error(api(auditor).get(path), 404, "not_found")


# --- the service below the API ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["feed\n", "feed\r\n", "\nfeed", "feed\x00"])
def test_service_refuses_a_name_with_control_characters(member_admin, name):
    # The API trims whitespace before the service sees the name; other callers (the admin,
    # commands, tasks) do not, so the service must check the whole string itself.
    with pytest.raises(InvalidInput):
        services.feed_create(actor=member_admin, name=name)
    assert not Feed.objects.exists()


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Uppercase",
        "with space",
        "a" * 65,
        "-leading-hyphen",
        "trailing-hyphen-",
        "under_score",
        "dot.ted",
        "é-accent",
        "",
        "   ",
        123,
        0,
        1.5,
        True,
        None,
        [],
        ["feed"],
        {},
        {"name": "feed"},
    ],
)
def test_invalid_feed_name_is_refused(api, member_admin, name):
    before = _last_seq()
    response = api(member_admin).post("/api/v1/feeds/", {"name": name}, format="json")
    error = assert_error(response, 400, "invalid_input")
    assert "name" in error["message"]
    assert not Feed.objects.exists()
    assert _last_seq() == before


def test_feed_name_of_64_characters_is_accepted(api, member_admin):
    response = api(member_admin).post("/api/v1/feeds/", {"name": "a" * 64}, format="json")
    assert response.status_code == 201, response.content


def test_missing_feed_name_is_refused_and_named(api, member_admin):
    error = assert_error(
        api(member_admin).post("/api/v1/feeds/", {"algorithms": ["md5"]}, format="json"),
        400,
        "invalid_input",
    )
    assert "name" in error["message"]
    assert not Feed.objects.exists()


UNKNOWN_FILTER_VALUES = {
    "algorithms": "crc32",
    "categories": "D",
    "age_groups": "18+",
    "industry_classes": "Z9",
    "content_types": "audio",
}
KNOWN_FILTER_VALUES = {
    "algorithms": "md5",
    "categories": "A",
    "age_groups": "3-6",
    "industry_classes": "A1",
    "content_types": "video",
}


@pytest.mark.parametrize("field", list(UNKNOWN_FILTER_VALUES))
def test_unknown_filter_value_is_refused_and_named(api, member_admin, field):
    body = {"name": "filtered", field: [UNKNOWN_FILTER_VALUES[field]]}
    error = assert_error(
        api(member_admin).post("/api/v1/feeds/", body, format="json"), 400, "invalid_input"
    )
    assert field in error["message"]
    assert not Feed.objects.exists()


@pytest.mark.parametrize("length", [13, 30, 33, 5000])
@pytest.mark.parametrize("field", list(UNKNOWN_FILTER_VALUES))
def test_long_unknown_filter_value_is_refused_without_echoing_it(api, member_admin, field, length):
    value = _garbage(length)
    # Next to a known value, so a service that echoed only "the unknown part" would be caught.
    body = {"name": "filtered", field: [KNOWN_FILTER_VALUES[field], value]}
    response = api(member_admin).post("/api/v1/feeds/", body, format="json")
    error = assert_error(response, 400, "invalid_input")
    assert field in error["message"]
    assert value not in _body_text(response)
    assert len(error["message"]) < 1000
    assert not Feed.objects.exists()


@pytest.mark.parametrize("value", ["md5", "", {"md5": True}, 5, 1.5, True, None])
@pytest.mark.parametrize("field", list(UNKNOWN_FILTER_VALUES))
def test_filter_that_is_not_a_list_is_refused(api, member_admin, field, value):
    response = api(member_admin).post(
        "/api/v1/feeds/", {"name": "filtered", field: value}, format="json"
    )
    error = assert_error(response, 400, "invalid_input")
    assert field in error["message"]
    assert not Feed.objects.exists()


@pytest.mark.parametrize("items", [[1], [0], [1.5], [True], [None], [["md5"]], [{"a": "md5"}]])
@pytest.mark.parametrize("field", list(UNKNOWN_FILTER_VALUES))
def test_filter_list_of_non_strings_is_refused(api, member_admin, field, items):
    response = api(member_admin).post(
        "/api/v1/feeds/", {"name": "filtered", field: items}, format="json"
    )
    error = assert_error(response, 400, "invalid_input")
    assert field in error["message"]
    assert not Feed.objects.exists()


def test_filter_with_too_many_values_is_refused(api, member_admin):
    body = {"name": "filtered", "categories": ["A"] * 17}
    assert_error(api(member_admin).post("/api/v1/feeds/", body, format="json"), 400)
    assert not Feed.objects.exists()


@pytest.mark.parametrize(
    "change",
    [
        {"baseline_only": "perhaps"},
        {"baseline_only": [True]},
        {"baseline_only": None},
        {"description": "d" * 4001},
        {"description": ["text"]},
        {"description": {"text": "x"}},
    ],
)
def test_invalid_optional_field_is_refused(api, member_admin, change):
    response = api(member_admin).post(
        "/api/v1/feeds/", {"name": "filtered", **change}, format="json"
    )
    error = assert_error(response, 400, "invalid_input")
    assert next(iter(change)) in error["message"]
    assert len(error["message"]) < 1000
    assert not Feed.objects.exists()


@pytest.mark.parametrize(
    "raw", ["[]", '[{"name": "feed"}]', '"feed"', '""', "42", "0", "true", "false", "null"]
)
def test_body_that_is_not_a_json_object_is_refused(api, member_admin, raw):
    before = _last_seq()
    response = api(member_admin).post("/api/v1/feeds/", raw, content_type="application/json")
    assert_error(response, 400, "invalid_input")
    assert not Feed.objects.exists()
    assert _last_seq() == before


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": ',
        b"{'name': 'feed'}",
        b'{"name": "feed",}',
        b'{"name": "feed", "algorithms": [NaN]}',
        b"\xff\xfe{}",
        b'{"name": "\xc3"}',
        b"[" * 100_000,
    ],
)
def test_malformed_json_is_refused(api, member_admin, raw):
    before = _last_seq()
    response = api(member_admin).post("/api/v1/feeds/", raw, content_type="application/json")
    assert_error(response, 400, "malformed_request")
    assert not Feed.objects.exists()
    assert _last_seq() == before


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded"]
)
def test_unsupported_content_type_is_refused(api, member_admin, content_type):
    response = api(member_admin).post(
        "/api/v1/feeds/", '{"name": "feed"}', content_type=content_type
    )
    assert_error(response, 415, "unsupported_media_type")
    assert not Feed.objects.exists()


# --- pagination ---------------------------------------------------------------------------------

PAGINATED = ["/api/v1/feeds/", "/api/v1/releases/"]


@pytest.mark.parametrize(
    "query",
    [
        "after=-1",
        "after=abc",
        f"after={2**70}",
        "after=1.5",
        "after=%00",
        "limit=0",
        "limit=-5",
        "limit=abc",
        "limit=1001",
        f"limit={2**70}",
        "limit=%00",
        "limit=1e3",
    ],
)
@pytest.mark.parametrize("path", PAGINATED)
def test_bad_pagination_parameters_are_refused(api, auditor, world, path, query):
    error = assert_error(api(auditor).get(f"{path}?{query}"), 400, "invalid_input")
    assert query.split("=")[0] in error["message"]


@pytest.mark.parametrize("path", PAGINATED)
def test_empty_pagination_parameters_mean_the_defaults(api, auditor, world, path):
    response = api(auditor).get(f"{path}?after=&limit=")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


@pytest.mark.parametrize("path", PAGINATED)
def test_pagination_walks_every_row_once(api, auditor, world, path):
    for name in ("second", "third"):
        services.feed_create(actor=world.owner, name=name)
        assert releases.release_cut() is not None  # one release per new feed
    client = api(auditor)
    everything = client.get(path + "?limit=1000").json()
    assert everything["next_after"] is None
    assert len(everything["results"]) == 3

    seen: list[Any] = []
    after = 0
    while True:
        page = client.get(f"{path}?limit=1&after={after}").json()
        assert len(page["results"]) == 1
        seen.extend(page["results"])
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == everything["results"]


# --- feeds in a grading framework ---------------------------------------------------------------


def test_a_feed_names_its_framework_and_the_classes_it_admits(api, member_admin):
    created = api(member_admin).post(
        "/api/v1/feeds/",
        {
            "name": "md5-industry-a",
            "algorithms": ["md5"],
            "framework": "industry",
            "classes": ["A2", "A1", "A1"],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    # The classes in the framework's order, each once; the rule version is set when published.
    assert (body["framework"], body["classes"], body["framework_version"]) == (
        "industry",
        ["A1", "A2"],
        0,
    )
    plain = api(member_admin).post("/api/v1/feeds/", {"name": "md5-plain"}, format="json")
    assert (plain.json()["framework"], plain.json()["classes"]) == ("uk", [])
    event = AuditEvent.objects.filter(action="feed.create", object_id="md5-industry-a").get()
    assert (event.after["framework"], event.after["classes"]) == ("industry", ["A1", "A2"])


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({"framework": "ukk"}, "unknown_framework", "expected one of"),
        ({"framework": "a" * 33}, "invalid_input", "framework"),
        ({"framework": "interpol-baseline", "classes": ["A"]}, "unknown_class", "yes, no"),
        ({"classes": ["yes"]}, "unknown_class", "A, B, C"),  # uk by default
        ({"framework": "industry", "classes": "A1"}, "invalid_input", "classes"),
        ({"framework": "industry", "classes": ["unassessed"]}, "unknown_class", "A1"),
    ],
)
def test_a_bad_framework_or_class_is_refused_and_nothing_is_created(
    api, member_admin, body, code, says
):
    before = _last_seq()
    response = api(member_admin).post(
        "/api/v1/feeds/", {"name": "md5-refused", **body}, format="json"
    )
    error = assert_error(response, 400, code)
    assert says in error["message"]
    assert not Feed.objects.filter(name="md5-refused").exists()
    assert _last_seq() == before
