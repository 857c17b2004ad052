"""The curation API (``/api/v1/``): the analyst → reviewer flow, hash search in every accepted
form, which role may call which endpoint, and bad input of every shape.

Every error must be ``{"error": {"code", "message", ...}}`` with a 4xx status; nothing may
answer 500. Hash values are synthetic random bytes and must never be echoed in an error.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from audit import urls as audit_urls
from hashlist import services, urls
from hashlist.frameworks.initial import FRAMEWORKS
from hashlist.models import Entry, ImportBatch, ImportRowError, Proposal
from hashsync_client.algorithms import ALGORITHMS, get_algorithm
from tests.conftest import synthetic
from tests.factories import GRADING, invalid_import_batch
from tests.role_matrix import ROLES, assert_role_refused, served
from tests.utils import assert_error, last_audit_seq

pytestmark = pytest.mark.django_db

SIGNED_IN = frozenset(ROLES) - {"anonymous"}
VIEWERS = frozenset({"analyst", "reviewer", "auditor"})
PROPOSERS = frozenset({"analyst", "reviewer"})
REVIEWERS = frozenset({"reviewer"})
AUDITORS = frozenset({"auditor"})


# --- helpers ------------------------------------------------------------------------------------


def assert_client_error(response: Any) -> dict[str, Any]:
    """Any 4xx, in the error shape: what "no 500 for any input" means."""
    assert 400 <= response.status_code < 500, response.content[:500]
    return assert_error(response, response.status_code)


def _body_text(response: Any) -> str:
    return json.dumps(response.json(), ensure_ascii=False)


@dataclass(frozen=True)
class World:
    """What the endpoints need to exist: an approved entry with two hashes, a pending proposal
    by someone else, and an import batch with one row error."""

    entry: Entry
    md5: str
    sha1: str
    pending: Proposal
    batch: ImportBatch
    other_author: Any


@pytest.fixture
def world(analyst2: Any, reviewer2: Any, settings: Any, tmp_path: Any) -> World:
    settings.MEDIA_ROOT = tmp_path
    md5, sha1 = synthetic("md5"), synthetic("sha1")
    created = services.proposal_create_entry(
        actor=analyst2,
        grading=GRADING,
        hashes=[{"algorithm": "md5", "value": md5}, {"algorithm": "sha1", "value": sha1}],
    )
    services.proposal_approve(actor=reviewer2, proposal_id=created.pk)
    created.refresh_from_db()
    assert created.entry is not None
    pending = services.proposal_regrade(
        actor=analyst2, entry_id=created.entry.pk, grading={"age_group": "0-2"}
    )
    batch = invalid_import_batch(analyst2)
    return World(created.entry, md5, sha1, pending, batch, analyst2)


def _own_pending(world: World, user: Any) -> Proposal:
    """A pending proposal written by ``user`` (made directly, so any role can own one)."""
    return Proposal.objects.create(
        kind="regrade",
        entry=world.entry,
        base_revision=world.entry.revision,
        payload={"grading": {**GRADING, "category": "C"}},
        author=user or world.other_author,
    )


# --- the role matrix ----------------------------------------------------------------------------

Request = tuple[str, str, Any, str]  # method, path, body, format


@dataclass(frozen=True)
class Endpoint:
    allowed: frozenset[str]
    status: int  # what an allowed role gets for the request ``build`` makes
    build: Callable[[World, Any], Request]


def _get(name: str, **kwargs: Any) -> Callable[[World, Any], Request]:
    return lambda w, u: ("get", reverse(name, kwargs=kwargs or None), None, "json")


def _uk_changed() -> dict[str, Any]:
    definition = copy.deepcopy(FRAMEWORKS["uk"]["definition"])
    definition["rules"][0]["source"] = "a corrected citation"
    return definition


ENDPOINTS: dict[str, Endpoint] = {
    "me": Endpoint(SIGNED_IN, 200, _get("me")),
    "entry-list": Endpoint(VIEWERS, 200, _get("entry-list")),
    "entry-detail": Endpoint(
        VIEWERS, 200, lambda w, u: ("get", f"/api/v1/entries/{w.entry.pk}/", None, "json")
    ),
    "hash-search": Endpoint(
        VIEWERS, 200, lambda w, u: ("post", reverse("hash-search"), {"value": w.md5}, "json")
    ),
    "proposal-list": Endpoint(VIEWERS, 200, _get("proposal-list")),
    "propose-create": Endpoint(
        PROPOSERS,
        201,
        lambda w, u: (
            "post",
            reverse("propose-create"),
            {**GRADING, "hashes": [{"algorithm": "md5", "value": synthetic("md5")}]},
            "json",
        ),
    ),
    "propose-regrade": Endpoint(
        PROPOSERS,
        201,
        lambda w, u: (
            "post",
            reverse("propose-regrade"),
            {"entry": w.entry.pk, "category": "B"},
            "json",
        ),
    ),
    "propose-add-hash": Endpoint(
        PROPOSERS,
        201,
        lambda w, u: (
            "post",
            reverse("propose-add-hash"),
            {"entry": w.entry.pk, "algorithm": "pdq", "value": synthetic("pdq")},
            "json",
        ),
    ),
    "propose-remove-hash": Endpoint(
        PROPOSERS,
        201,
        lambda w, u: (
            "post",
            reverse("propose-remove-hash"),
            {"entry": w.entry.pk, "algorithm": "sha1", "value": w.sha1, "comment": "wrong"},
            "json",
        ),
    ),
    "propose-retract": Endpoint(
        PROPOSERS,
        201,
        lambda w, u: (
            "post",
            reverse("propose-retract"),
            {"entry": w.entry.pk, "reason": "wrong"},
            "json",
        ),
    ),
    "proposal-detail": Endpoint(
        VIEWERS,
        200,
        lambda w, u: ("get", f"/api/v1/proposals/{w.pending.pk}/", None, "json"),
    ),
    "proposal-approve": Endpoint(
        REVIEWERS,
        200,
        lambda w, u: ("post", f"/api/v1/proposals/{w.pending.pk}/approve/", {}, "json"),
    ),
    "proposal-reject": Endpoint(
        REVIEWERS,
        200,
        lambda w, u: (
            "post",
            f"/api/v1/proposals/{w.pending.pk}/reject/",
            {"reason": "no"},
            "json",
        ),
    ),
    # The caller is the author here, so only the role can make the difference.
    "proposal-withdraw": Endpoint(
        PROPOSERS,
        200,
        lambda w, u: ("post", f"/api/v1/proposals/{_own_pending(w, u).pk}/withdraw/", {}, "json"),
    ),
    "review-queue": Endpoint(REVIEWERS, 200, _get("review-queue")),
    "import-upload": Endpoint(
        PROPOSERS,
        202,
        lambda w, u: (
            "post",
            reverse("import-upload"),
            {
                "file": SimpleUploadedFile(
                    "synthetic.csv", f"category,age_group,md5\nA,3-6,{synthetic('md5')}\n".encode()
                )
            },
            "multipart",
        ),
    ),
    "import-detail": Endpoint(
        VIEWERS, 200, lambda w, u: ("get", f"/api/v1/imports/{w.batch.pk}/", None, "json")
    ),
    "import-errors": Endpoint(
        VIEWERS, 200, lambda w, u: ("get", f"/api/v1/imports/{w.batch.pk}/errors/", None, "json")
    ),
    "import-rows": Endpoint(
        VIEWERS, 200, lambda w, u: ("get", f"/api/v1/imports/{w.batch.pk}/rows/", None, "json")
    ),
    "import-summary": Endpoint(
        VIEWERS, 200, lambda w, u: ("get", f"/api/v1/imports/{w.batch.pk}/summary/", None, "json")
    ),
    "import-sample": Endpoint(
        VIEWERS, 200, lambda w, u: ("get", f"/api/v1/imports/{w.batch.pk}/sample/", None, "json")
    ),
    "framework-list": Endpoint(VIEWERS, 200, _get("framework-list")),
    "framework-versions": Endpoint(VIEWERS, 200, _get("framework-versions", slug="uk")),
    "propose-framework": Endpoint(
        PROPOSERS,
        201,
        lambda w, u: (
            "post",
            reverse("propose-framework"),
            {"framework": "uk", "definition": _uk_changed(), "comment": "synthetic change"},
            "json",
        ),
    ),
    "audit-events": Endpoint(AUDITORS, 200, _get("audit-events")),
    "audit-verify": Endpoint(AUDITORS, 200, _get("audit-verify")),
}


def test_role_matrix_covers_every_endpoint():
    routes = [*urls.urlpatterns, *audit_urls.urlpatterns]
    assert {name for name, _ in served(routes)} == set(ENDPOINTS)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_role_gets_exactly_the_endpoints_it_is_entitled_to(name, role, request, api, world):
    endpoint = ENDPOINTS[name]
    user = None if role == "anonymous" else request.getfixturevalue(role)
    method, path, body, fmt = endpoint.build(world, user)
    before = last_audit_seq()

    response = getattr(api(user), method)(path, body, format=fmt)

    if role in endpoint.allowed:
        assert response.status_code == endpoint.status, response.content[:500]
        assert "error" not in response.json()
    else:
        assert_role_refused(response, role)
        assert last_audit_seq() == before  # a refused request changes nothing


def test_basic_authentication_with_a_valid_password_is_accepted(analyst):
    analyst.set_password("synthetic-password")
    analyst.save()
    token = base64.b64encode(b"analyst:synthetic-password").decode()
    response = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Basic {token}")
    assert response.status_code == 200
    assert response.json() == {"username": "analyst", "roles": ["analyst"]}


def test_basic_authentication_with_a_wrong_password_is_refused(analyst):
    token = base64.b64encode(b"analyst:not-the-password").decode()
    response = APIClient().get("/api/v1/entries/", HTTP_AUTHORIZATION=f"Basic {token}")
    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"].startswith("Basic")


def test_session_post_without_csrf_token_is_refused(analyst):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(analyst)
    response = client.post("/api/v1/proposals/retract/", {"entry": 1, "reason": "x"}, format="json")
    assert_error(response, 403, "permission_denied", "csrf_failed")
    assert Proposal.objects.count() == 0


def test_wrong_method_is_refused_with_method_not_allowed(api, reviewer, world):
    response = api(reviewer).get(f"/api/v1/proposals/{world.pending.pk}/approve/")
    assert_error(response, 405, "method_not_allowed")
    response = api(reviewer).delete(f"/api/v1/entries/{world.entry.pk}/")
    assert_error(response, 405, "method_not_allowed")


# --- the whole flow -----------------------------------------------------------------------------


def test_analyst_proposes_reviewer_approves_and_entry_shows_canonical_hashes(
    api, analyst, reviewer
):
    md5 = synthetic("md5")
    photodna_raw = secrets.token_bytes(144)
    analyst_client, reviewer_client = api(analyst), api(reviewer)

    created = analyst_client.post(
        "/api/v1/proposals/create-entry/",
        {
            "category": "B",
            "age_group": "11-13",
            "baseline": True,
            "hashes": [
                {"algorithm": "md5", "value": f"  {md5.upper()}  "},
                {"algorithm": "photodna", "value": photodna_raw.hex().upper()},
            ],
            "notes": "synthetic internal note",
            "comment": "synthetic test item",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    proposal = created.json()
    assert (proposal["kind"], proposal["status"], proposal["author"]) == (
        "create",
        "pending",
        "analyst",
    )
    assert proposal["entry"] is None

    queue = reviewer_client.get("/api/v1/review-queue/")
    assert queue.status_code == 200
    assert [p["id"] for p in queue.json()["results"]] == [proposal["id"]]
    # The author does not see their own proposal in a review queue (nor may they review it).
    assert api(analyst).get("/api/v1/review-queue/").status_code == 403

    approved = reviewer_client.post(
        f"/api/v1/proposals/{proposal['id']}/approve/", {"reason": "checked"}, format="json"
    )
    assert approved.status_code == 200, approved.content
    body = approved.json()
    assert (body["status"], body["reviewer"], body["review_reason"]) == (
        "approved",
        "reviewer",
        "checked",
    )
    assert reviewer_client.get("/api/v1/review-queue/").json()["results"] == []

    entry = analyst_client.get(f"/api/v1/entries/{body['entry']}/")
    assert entry.status_code == 200
    data = entry.json()
    assert (data["category"], data["age_group"], data["baseline"], data["revision"]) == (
        "B",
        "11-13",
        True,
        1,
    )
    assert sorted((h["algorithm"], h["value"]) for h in data["hashes"]) == [
        ("md5", md5),
        ("photodna", ",".join(str(b) for b in photodna_raw)),
    ]


@pytest.fixture
def searchable(analyst2: Any, reviewer2: Any) -> tuple[Entry, dict[str, bytes]]:
    raw = {name: secrets.token_bytes(algo.length) for name, algo in ALGORITHMS.items()}
    proposal = services.proposal_create_entry(
        actor=analyst2,
        grading=GRADING,
        hashes=[{"algorithm": n, "value": ALGORITHMS[n].canonical(v)} for n, v in raw.items()],
    )
    services.proposal_approve(actor=reviewer2, proposal_id=proposal.pk)
    proposal.refresh_from_db()
    assert proposal.entry is not None
    return proposal.entry, raw


SPELLINGS: dict[str, Callable[[bytes], str]] = {
    "uppercase-hex": lambda raw: raw.hex().upper(),
    "lowercase-hex": lambda raw: raw.hex(),
    "base64": lambda raw: base64.b64encode(raw).decode(),
    "unpadded-urlsafe-base64": lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="),
    "whitespace-around": lambda raw: f" \t{raw.hex()}\n ",
}


@pytest.mark.parametrize("with_algorithm", [True, False], ids=["with-algorithm", "any-algorithm"])
@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_search_finds_the_entry_by_any_accepted_spelling(
    api, analyst, searchable, algorithm, spelling, with_algorithm
):
    entry, raw = searchable
    body: dict[str, str] = {"value": SPELLINGS[spelling](raw[algorithm])}
    if with_algorithm:
        body["algorithm"] = algorithm
    response = api(analyst).post("/api/v1/hashes/search/", body, format="json")
    assert response.status_code == 200, response.content
    matches = response.json()["matches"]
    assert [(m["algorithm"], m["entry"]["id"]) for m in matches] == [(algorithm, entry.pk)]


def test_search_finds_photodna_by_its_decimal_list(api, analyst, searchable):
    entry, raw = searchable
    spaced = ", ".join(str(b) for b in raw["photodna"])
    response = api(analyst).post("/api/v1/hashes/search/", {"value": spaced}, format="json")
    assert response.status_code == 200
    assert [m["entry"]["id"] for m in response.json()["matches"]] == [entry.pk]


def test_search_for_a_hash_not_on_the_list_finds_nothing(api, analyst, searchable):
    for body in ({"value": synthetic("sha256")}, {"value": synthetic("md5"), "algorithm": "md5"}):
        response = api(analyst).post("/api/v1/hashes/search/", body, format="json")
        assert response.status_code == 200
        assert response.json() == {"matches": []}


def test_search_with_the_wrong_algorithm_finds_nothing(api, analyst, searchable):
    _, raw = searchable
    body = {"value": raw["sha256"].hex(), "algorithm": "pdq"}  # same length, other algorithm
    response = api(analyst).post("/api/v1/hashes/search/", body, format="json")
    assert response.status_code == 200
    assert response.json() == {"matches": []}


# --- bad input: hashes --------------------------------------------------------------------------


def _replace_one(text: str, char: str) -> str:
    position = secrets.randbelow(len(text))
    return text[:position] + char + text[position + 1 :]


MALFORMED: dict[str, Callable[[str], str]] = {
    "one-byte-short": lambda name: secrets.token_hex(get_algorithm(name).length - 1),
    "one-byte-long": lambda name: secrets.token_hex(get_algorithm(name).length + 1),
    "non-hex": lambda name: _replace_one(secrets.token_hex(get_algorithm(name).length), "x"),
    "non-ascii": lambda name: _replace_one(secrets.token_hex(get_algorithm(name).length), "é"),
    "inner-space": lambda name: _replace_one(secrets.token_hex(get_algorithm(name).length), " "),
    "0x-prefix": lambda name: "0x" + secrets.token_hex(get_algorithm(name).length),
    "empty": lambda name: "",
    "blank": lambda name: "   ",
}

HASH_BODIES: dict[str, Callable[[World, str, str], tuple[str, dict[str, Any]]]] = {
    "create-entry": lambda w, a, v: (
        "/api/v1/proposals/create-entry/",
        {**GRADING, "hashes": [{"algorithm": a, "value": v}]},
    ),
    "add-hash": lambda w, a, v: (
        "/api/v1/proposals/add-hash/",
        {"entry": w.entry.pk, "algorithm": a, "value": v},
    ),
    "remove-hash": lambda w, a, v: (
        "/api/v1/proposals/remove-hash/",
        {"entry": w.entry.pk, "algorithm": a, "value": v, "comment": "x"},
    ),
    "search": lambda w, a, v: ("/api/v1/hashes/search/", {"value": v, "algorithm": a}),
}


@pytest.mark.parametrize("endpoint", HASH_BODIES)
@pytest.mark.parametrize("problem", MALFORMED)
@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_malformed_hash_is_refused_without_echoing_it(
    api, reviewer, world, algorithm, problem, endpoint
):
    value = MALFORMED[problem](algorithm)
    path, body = HASH_BODIES[endpoint](world, algorithm, value)
    proposals = Proposal.objects.count()

    response = api(reviewer).post(path, body, format="json")

    error = assert_error(response, 400, "invalid_input", "invalid_hash")
    if value.strip():
        assert value not in _body_text(response)
    if problem not in ("empty", "blank"):
        assert algorithm in error["message"]  # says which algorithm's form was expected
    assert Proposal.objects.count() == proposals


@pytest.mark.parametrize("endpoint", HASH_BODIES)
def test_hash_pasted_into_the_algorithm_field_is_refused_without_echoing_it(
    api, analyst, world, endpoint
):
    value = synthetic("sha256")
    path, body = HASH_BODIES[endpoint](world, value, value)
    response = api(analyst).post(path, body, format="json")
    assert_error(response, 400, "invalid_input", "unknown_algorithm")
    assert value not in _body_text(response)


@pytest.mark.parametrize("value", [12345, None, True, [], {}, ["a"], {"hex": "00"}])
def test_hash_value_of_the_wrong_json_type_is_refused(api, analyst, world, value):
    path, body = HASH_BODIES["add-hash"](world, "md5", "")
    response = api(analyst).post(path, {**body, "value": value}, format="json")
    assert_error(response, 400, "invalid_input", "invalid_hash")


def test_search_for_text_that_is_no_hash_at_all_says_what_was_expected(api, analyst):
    pasted = "zz-synthetic-paste-zz"
    response = api(analyst).post("/api/v1/hashes/search/", {"value": pasted}, format="json")
    assert_error(response, 400, "invalid_hash")
    assert pasted not in response.content.decode()
    assert "md5" in response.json()["error"]["message"]


def test_search_for_a_valid_hash_that_is_not_listed_finds_nothing(api, analyst, new_hash):
    response = api(analyst).post(
        "/api/v1/hashes/search/", {"value": new_hash("sha1")}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"matches": []}


def test_duplicate_hash_is_refused_with_hash_exists(api, analyst, world):
    response = api(analyst).post(
        "/api/v1/proposals/create-entry/",
        {**GRADING, "hashes": [{"algorithm": "md5", "value": world.md5.upper()}]},
        format="json",
    )
    error = assert_error(response, 409, "hash_exists")
    assert error["details"]["entry_id"] == world.entry.pk
    assert world.md5 not in _body_text(response)


def test_removing_the_last_hash_is_refused_with_last_hash(api, analyst, analyst2, reviewer2):
    value = synthetic("md5")
    proposal = services.proposal_create_entry(
        actor=analyst2, grading=GRADING, hashes=[{"algorithm": "md5", "value": value}]
    )
    services.proposal_approve(actor=reviewer2, proposal_id=proposal.pk)
    proposal.refresh_from_db()
    response = api(analyst).post(
        "/api/v1/proposals/remove-hash/",
        {"entry": proposal.entry_id, "algorithm": "md5", "value": value, "comment": "x"},
        format="json",
    )
    assert_error(response, 400, "last_hash")


def test_second_approval_of_the_same_hash_is_refused_and_applies_nothing(
    api, analyst, analyst2, reviewer
):
    shared = {"algorithm": "sha1", "value": synthetic("sha1")}
    first = services.proposal_create_entry(actor=analyst, grading=GRADING, hashes=[shared])
    second = services.proposal_create_entry(
        actor=analyst2,
        grading=GRADING,
        hashes=[{"algorithm": "md5", "value": synthetic("md5")}, shared],
    )
    client = api(reviewer)
    assert (
        client.post(f"/api/v1/proposals/{first.pk}/approve/", {}, format="json").status_code == 200
    )
    before = (Entry.objects.count(), last_audit_seq())

    response = client.post(f"/api/v1/proposals/{second.pk}/approve/", {}, format="json")

    assert_error(response, 409, "hash_exists")
    assert (Entry.objects.count(), last_audit_seq()) == before
    second.refresh_from_db()
    assert second.status == "pending"


def test_stale_approval_is_refused_with_proposal_stale(api, analyst, analyst2, reviewer, world):
    first = world.pending  # regrade by another analyst, against revision 1
    second = services.proposal_regrade(
        actor=analyst, entry_id=world.entry.pk, grading={"category": "C"}
    )
    client = api(reviewer)
    assert (
        client.post(f"/api/v1/proposals/{first.pk}/approve/", {}, format="json").status_code == 200
    )
    response = client.post(f"/api/v1/proposals/{second.pk}/approve/", {}, format="json")
    error = assert_error(response, 409, "proposal_stale")
    assert error["details"] == {"base_revision": 1, "current_revision": 2}
    again = client.post(f"/api/v1/proposals/{first.pk}/approve/", {}, format="json")
    assert_error(again, 409, "proposal_not_pending")


# --- bad input: gradings, missing fields, body shapes --------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"category": "D"},
        {"category": ""},
        {"age_group": "18+"},
        {"age_group": None},
        {"content_type": "audio"},
        {"industry_class": "Z9"},
        {"baseline": "perhaps"},
        {"hashes": [{"algorithm": "crc32", "value": "00000000"}]},
        {"hashes": []},
        {"hashes": "md5"},
        {"hashes": [["md5", "00"]]},
        {"hashes": [{"algorithm": "md5"}]},
        {"hashes": [{"value": "00"}]},
        {"source": "s" * 201},
    ],
)
def test_create_entry_with_an_invalid_field_is_refused(api, analyst, change):
    body = {**GRADING, "hashes": [{"algorithm": "md5", "value": synthetic("md5")}], **change}
    response = api(analyst).post("/api/v1/proposals/create-entry/", body, format="json")
    assert_error(response, 400, "invalid_input", "invalid_hash", "unknown_algorithm")
    assert Proposal.objects.count() == 0


@pytest.mark.parametrize("missing", ["category", "age_group", "hashes"])
def test_create_entry_without_a_required_field_is_refused(api, analyst, missing):
    body = {**GRADING, "hashes": [{"algorithm": "md5", "value": synthetic("md5")}]}
    del body[missing]
    error = assert_error(
        api(analyst).post("/api/v1/proposals/create-entry/", body, format="json"),
        400,
        "invalid_input",
    )
    assert missing in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/proposals/regrade/", {"category": "B"}, "entry"),
        ("/api/v1/proposals/regrade/", {"entry": "{entry}"}, "grading"),
        ("/api/v1/proposals/add-hash/", {"entry": "{entry}", "algorithm": "md5"}, "value"),
        ("/api/v1/proposals/add-hash/", {"entry": "{entry}", "value": "00"}, "algorithm"),
        ("/api/v1/proposals/remove-hash/", {"entry": "{entry}", "algorithm": "md5"}, "value"),
        ("/api/v1/proposals/retract/", {"entry": "{entry}"}, "reason"),
        ("/api/v1/proposals/retract/", {"reason": "x"}, "entry"),
        ("/api/v1/proposals/{pending}/reject/", {}, "reason"),
        ("/api/v1/hashes/search/", {"algorithm": "md5"}, "value"),
    ],
)
def test_missing_field_is_refused_and_named(api, reviewer, world, path, body, field):
    path = path.format(pending=world.pending.pk)
    body = {k: world.entry.pk if v == "{entry}" else v for k, v in body.items()}
    error = assert_error(api(reviewer).post(path, body, format="json"), 400, "invalid_input")
    assert field in error["message"]


JSON_POSTS = [
    "/api/v1/proposals/create-entry/",
    "/api/v1/proposals/regrade/",
    "/api/v1/proposals/add-hash/",
    "/api/v1/proposals/remove-hash/",
    "/api/v1/proposals/retract/",
    "/api/v1/proposals/{pending}/approve/",
    "/api/v1/proposals/{pending}/reject/",
    "/api/v1/hashes/search/",
]


@pytest.mark.parametrize(
    "raw", ["[]", "[1, 2]", '"text"', '""', "42", "0", "true", "false", "null"]
)
@pytest.mark.parametrize("path", JSON_POSTS)
def test_body_that_is_not_a_json_object_is_refused(api, reviewer, world, path, raw):
    response = api(reviewer).post(
        path.format(pending=world.pending.pk), raw, content_type="application/json"
    )
    assert_error(response, 400, "invalid_input")
    world.pending.refresh_from_db()
    assert world.pending.status == "pending"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"category": ',
        b"{'category': 'A'}",
        b'{"category": "A",}',
        b'{"value": NaN}',
        b"\xff\xfe{}",
        b'{"value": "\xc3"}',
    ],
)
@pytest.mark.parametrize("path", JSON_POSTS)
def test_malformed_json_is_refused(api, reviewer, world, path, raw):
    response = api(reviewer).post(
        path.format(pending=world.pending.pk), raw, content_type="application/json"
    )
    assert_error(response, 400, "malformed_request")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/x-www-form-urlencoded", "application/yaml"],
)
@pytest.mark.parametrize("path", JSON_POSTS)
def test_unsupported_content_type_is_refused(api, reviewer, world, path, content_type):
    response = api(reviewer).post(
        path.format(pending=world.pending.pk), '{"reason": "x"}', content_type=content_type
    )
    assert_error(response, 415, "unsupported_media_type")


def test_multipart_body_for_a_json_endpoint_is_refused_cleanly(api, analyst):
    response = api(analyst).post(
        "/api/v1/proposals/create-entry/",
        {"category": "A", "age_group": "3-6", "hashes": synthetic("md5")},
        format="multipart",
    )
    # JSON endpoints parse JSON only; only the import upload takes multipart.
    assert_error(response, 415, "unsupported_media_type")
    assert Proposal.objects.count() == 0


HUGE = "A" * 100_000


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/proposals/create-entry/", {"comment": HUGE}),
        ("/api/v1/proposals/create-entry/", {"notes": HUGE}),
        ("/api/v1/proposals/create-entry/", {"source": HUGE}),
        ("/api/v1/proposals/create-entry/", {"category": HUGE}),
        ("/api/v1/proposals/create-entry/", {"hashes": [{"algorithm": "md5", "value": HUGE}]}),
        ("/api/v1/proposals/create-entry/", {"hashes": [{"algorithm": HUGE, "value": "00"}]}),
        ("/api/v1/proposals/regrade/", {"entry": "{entry}", "age_group": HUGE}),
        ("/api/v1/proposals/regrade/", {"entry": HUGE, "category": "B"}),
        ("/api/v1/proposals/add-hash/", {"entry": "{entry}", "algorithm": "md5", "value": HUGE}),
        ("/api/v1/proposals/retract/", {"entry": "{entry}", "reason": HUGE}),
        ("/api/v1/proposals/{pending}/approve/", {"reason": HUGE}),
        ("/api/v1/proposals/{pending}/reject/", {"reason": HUGE}),
        ("/api/v1/hashes/search/", {"value": HUGE}),
        ("/api/v1/hashes/search/", {"value": "00", "algorithm": HUGE}),
    ],
)
def test_huge_strings_are_refused(api, reviewer, world, path, body):
    path = path.format(pending=world.pending.pk)
    base = {**GRADING, "hashes": [{"algorithm": "md5", "value": synthetic("md5")}]}
    if "create-entry" not in path:
        base = {}
    body = {**base, **{k: world.entry.pk if v == "{entry}" else v for k, v in body.items()}}
    error = assert_error(
        api(reviewer).post(path, body, format="json"), 400, "invalid_input", "unknown_algorithm"
    )
    assert len(error["message"]) < 1000
    world.pending.refresh_from_db()
    assert world.pending.status == "pending"


def test_body_over_the_upload_limit_is_refused_not_crashed(api, analyst, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({**GRADING, "comment": "c" * 20_000, "hashes": []})
    response = api(analyst).post(
        "/api/v1/proposals/create-entry/", body, content_type="application/json"
    )
    assert_error(response, 413, "request_too_large")
    assert Proposal.objects.count() == 0


def test_multipart_body_with_too_many_fields_is_refused_not_crashed(api, analyst, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    fields = {f"field{i}": "x" for i in range(10)}
    response = api(analyst).post("/api/v1/imports/", fields, format="multipart")
    assert_error(response, 400, "bad_request")


# --- bad input: ids and pagination -------------------------------------------------------------

BAD_URL_IDS = ["-1", "0", "abc", "1.5", str(2**70), str(2**63), "%00", "1e3"]


@pytest.mark.parametrize("bad", BAD_URL_IDS)
@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("get", "/api/v1/entries/{}/"),
        ("get", "/api/v1/proposals/{}/"),
        ("post", "/api/v1/proposals/{}/approve/"),
        ("post", "/api/v1/proposals/{}/reject/"),
        ("post", "/api/v1/proposals/{}/withdraw/"),
        ("get", "/api/v1/imports/{}/"),
        ("get", "/api/v1/imports/{}/errors/"),
    ],
)
def test_bad_or_unknown_id_in_url_is_not_found(api, reviewer, method, template, bad):
    body = {"reason": "x"} if method == "post" else None
    response = getattr(api(reviewer), method)(template.format(bad), body, format="json")
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("entry", "status", "code"),
    [
        (-1, 400, "invalid_input"),
        (0, 400, "invalid_input"),
        (2**70, 404, "not_found"),
        (2**63, 404, "not_found"),
        (10**9, 404, "not_found"),
        ("abc", 400, "invalid_input"),
        ("", 400, "invalid_input"),
        (1.5, 400, "invalid_input"),
        (True, 400, "invalid_input"),
        (None, 400, "invalid_input"),
        ([1], 400, "invalid_input"),
        ({"id": 1}, 400, "invalid_input"),
    ],
)
@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/api/v1/proposals/regrade/", {"category": "B"}),
        ("/api/v1/proposals/add-hash/", {"algorithm": "md5", "value": "{md5}"}),
        ("/api/v1/proposals/remove-hash/", {"algorithm": "md5", "value": "{md5}", "comment": "x"}),
        ("/api/v1/proposals/retract/", {"reason": "x"}),
    ],
)
def test_bad_or_unknown_entry_id_in_body_is_refused(
    api, analyst, world, path, extra, entry, status, code
):
    body = {
        **{k: synthetic("md5") if v == "{md5}" else v for k, v in extra.items()},
        "entry": entry,
    }
    assert_error(api(analyst).post(path, body, format="json"), status, code)


PAGINATED = [
    ("auditor", "/api/v1/entries/"),
    ("auditor", "/api/v1/proposals/"),
    ("reviewer", "/api/v1/review-queue/"),
    ("auditor", "/api/v1/imports/{batch}/errors/"),
    ("auditor", "/api/v1/audit/events/"),
]


@pytest.mark.parametrize(
    "query",
    [
        "after=-1",
        "after=abc",
        f"after={2**70}",
        "after=1.5",
        "limit=0",
        "limit=-5",
        "limit=abc",
        "limit=100000",
        f"limit={2**70}",
        "limit=",
        "limit=%00",
    ],
)
@pytest.mark.parametrize(("role", "path"), PAGINATED)
def test_bad_pagination_parameters_are_refused(api, request, world, role, path, query):
    url = path.format(batch=world.batch.pk) + "?" + query
    response = api(request.getfixturevalue(role)).get(url)
    if query == "limit=":  # an empty value means "the default"
        assert response.status_code == 200
        return
    error = assert_error(response, 400, "invalid_input")
    assert query.split("=")[0] in error["message"]


@pytest.mark.parametrize(("role", "path"), PAGINATED)
def test_pagination_walks_every_row_once(api, request, world, role, path, analyst2, reviewer2):
    for _ in range(2):
        proposal = services.proposal_create_entry(
            actor=analyst2,
            grading=GRADING,
            hashes=[{"algorithm": "md5", "value": synthetic("md5")}],
        )
        services.proposal_approve(actor=reviewer2, proposal_id=proposal.pk)
    # The review queue needs pending proposals.
    services.proposal_regrade(actor=analyst2, entry_id=world.entry.pk, grading={"category": "C"})
    ImportRowError.objects.create(batch=world.batch, line=3, message="age_group is required")
    client = api(request.getfixturevalue(role))
    url = path.format(batch=world.batch.pk)
    everything = client.get(url + "?limit=1000").json()
    assert everything["next_after"] is None
    assert len(everything["results"]) >= 2

    seen: list[Any] = []
    after = 0
    while True:
        page = client.get(f"{url}?limit=1&after={after}").json()
        seen.extend(page["results"])
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == everything["results"]


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/entries/", "status=deleted"),
        ("/api/v1/entries/", "category=Z"),
        ("/api/v1/proposals/", "status=lost"),
        ("/api/v1/proposals/", "kind=merge"),
        ("/api/v1/proposals/", "mine=perhaps"),
        ("/api/v1/audit/events/", "object_type=" + "x" * 100),
    ],
)
def test_bad_filter_is_refused(api, auditor, path, query):
    assert_error(api(auditor).get(f"{path}?{query}"), 400, "invalid_input")


def test_unknown_api_url_is_a_json_not_found(api, analyst):
    assert_error(api(analyst).get("/api/v1/no-such-thing/"), 404, "not_found")


# --- the schema ---------------------------------------------------------------------------------


def test_schema_is_an_openapi_document_in_yaml_by_default(api):
    response = api(None).get("/api/v1/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    assert "/api/v1/proposals/create-entry/" in document["paths"]


@pytest.mark.parametrize(
    "how", [{"path": "/api/v1/schema/?format=json"}, {"HTTP_ACCEPT": "application/json"}]
)
def test_schema_is_served_as_json_on_request(api, how):
    path = how.get("path", "/api/v1/schema/")
    headers = {k: v for k, v in how.items() if k != "path"}
    response = api(None).get(path, **headers)
    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "hashsync API"
    assert {p for p in document["paths"] if p.startswith("/api/v1/")} >= {
        "/api/v1/entries/",
        "/api/v1/hashes/search/",
        "/api/v1/proposals/{proposal_id}/approve/",
        "/api/v1/review-queue/",
        "/api/v1/audit/verify/",
    }


# --- One error convention (docs/api.md, "Errors") -----------------------------------------------


def test_an_unknown_algorithm_is_unknown_algorithm_without_echoing_it(api, analyst):
    body = {**GRADING, "hashes": [{"algorithm": "crc32-" + synthetic("md5"), "value": "00"}]}

    response = api(analyst).post("/api/v1/proposals/create-entry/", body, format="json")

    error = assert_error(response, 400, "unknown_algorithm")
    assert error["details"]["accepted"] == ["md5", "sha1", "sha256", "pdq", "photodna"]
    assert "crc32" not in response.content.decode()


def test_list_positions_in_errors_count_from_zero(api, analyst):
    good, bad = synthetic("md5"), synthetic("sha1")[:-2]
    hashes = [{"algorithm": "md5", "value": good}, {"algorithm": "sha1", "value": bad}]

    response = api(analyst).post(
        "/api/v1/proposals/create-entry/", {**GRADING, "hashes": hashes}, format="json"
    )

    error = assert_error(response, 400, "invalid_hash")
    assert error["message"].startswith("hashes[1]")  # the second item, as DRF numbers lists


def test_every_error_carries_details_even_when_empty(api, analyst):
    response = api(analyst).get("/api/v1/entries/999999/")

    error = assert_error(response, 404, "not_found")
    assert error["details"] == {}
