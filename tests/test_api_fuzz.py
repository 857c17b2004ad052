"""Property-based fuzzing of the served OpenAPI schema (DESIGN.md §7: "no 500 for any input").

Schemathesis reads ``/api/v1/schema/?format=json`` from the WSGI app and, for every operation,
sends generated requests to the app in-process: boundary and malformed values (its coverage
phase) and random valid and invalid ones (its fuzzing phase). Whatever the input:

* nothing answers 5xx;
* every 4xx is the one error shape, ``{"error": {"code": str, "message": str, ...}}``;
* every success matches the schema (content type and body).

The superuser run reaches every staff view's logic; the member run does the same for the
member sync API (``/api/v1/sync/``, and the StopNCII-compatible ``/api/v1/stopncii/``) with a
valid member token of every scope, entitled to a published feed; a cheaper run as an anonymous
caller and as a signed-in user without a role checks that refusals have the same shape and
nothing else leaks.

Synthetic data only: seeded entries carry random hash values, and generated ones are random
bytes in an accepted text form.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from distribution import releases
from distribution import services as feed_services
from distribution.models import FeedVersion
from hashsync_client.algorithms import ALGORITHMS, get_algorithm
from members import services as member_services
from members.models import ApiToken
from members.tokens import digest
from sync import services as sync_services
from sync.auth import MemberPrincipal
from tests.conftest import synthetic
from tests.factories import (
    approved_entry,
    invalid_import_batch,
    member_with_token,
    propose_entry,
)

SCHEMA_URL = "/api/v1/schema/?format=json"  # the view answers YAML unless asked for JSON
PASSWORD = "fuzz-synthetic-password"

FUZZ_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,  # the same cases on every run, so CI cannot flake
    "database": None,  # derandomized runs need no example database; write no .hypothesis/
    # The DB fixtures and per-request app overhead trip the timing health checks; the data
    # checks (too much filtering, large data) are schemathesis's business, not this suite's.
    "suppress_health_check": list(HealthCheck),
}


def closing(app: Any) -> Any:
    """The WSGI app, with each response read to its end and closed, as a WSGI server does (the
    in-process transport does not close, so the file a streamed bundle reads would leak)."""

    def serve(environ: Any, start_response: Any) -> Any:
        result = app(environ, start_response)
        try:
            return [b"".join(result)]
        finally:
            result.close()

    return serve


# Loaded while collecting, so every operation is its own test item. Fetching the schema needs
# no database; the fixtures below make the same app share each test's transaction.
schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, closing(get_wsgi_application()))
# Member operations take a member token, staff operations a staff password: each run fuzzes
# the operations its credentials open (the roleless run fuzzes them all).
MEMBER_PATHS = r"^/api/v1/(sync|stopncii)/"
staff_schema = schema.exclude(path_regex=MEMBER_PATHS)
member_schema = schema.include(path_regex=MEMBER_PATHS)
# Open to anyone, so not refused without a role: the API index.
guarded_schema = schema.exclude(path_regex=r"^/api/v1/$")


# --- Steering generated values towards rows that exist ------------------------------------------

# What the running test seeded: filled by the ``seeded`` fixture, read by the generation hooks
# while Hypothesis draws (the schema and its hooks are built at collection, before any fixture).
SEEDED: dict[str, Any] = {}


def _either(value: Any, *alternatives: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The generated value half the time, else one of ``alternatives``."""
    if not alternatives:
        return st.just(value)
    return st.one_of(st.just(value), st.one_of(*alternatives))


def _valid_hash(algorithm: str) -> st.SearchStrategy[str]:
    algo = get_algorithm(algorithm)
    return st.binary(min_size=algo.length, max_size=algo.length).map(algo.canonical)


def _seeded_ids(name: str, path: str = "") -> list[st.SearchStrategy[Any]]:
    if name == "name":  # ``{name}`` is a member's in members/…, a feed's everywhere else
        name = "member_name" if path.startswith("/api/v1/members/") else "feed_name"
    ids = SEEDED.get(name)
    return [st.sampled_from(ids)] if ids else []


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Point path ids (``entry_id``, ``proposal_id``, ``batch_id``, ``token_id``, …) and names
    (members, feeds, sync clients, bundle addresses) at seeded rows half the time: ids differ
    between SQLite and PostgreSQL, and random values almost never exist."""
    if not path_parameters:
        return st.just(path_parameters)
    path = context.operation.path
    return st.fixed_dictionaries(
        {name: _either(v, *_seeded_ids(name, path)) for name, v in path_parameters.items()}
    )


@schema.hook
def flatmap_query(context: Any, query: Any) -> Any:
    """Half the time, a seeded value for a query parameter the seed knows (``from_version``:
    the versions of the published feed, so plans answer deltas and snapshots, not only 409)."""
    if not isinstance(query, dict) or not query:
        return st.just(query)
    return st.fixed_dictionaries(
        {name: _either(value, *_seeded_ids(name)) for name, value in query.items()}
    )


def _with_valid_value(item: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``item`` (``{"algorithm", "value", ...}``) with a value that parses, if it names a known
    algorithm, or with a hash the published feed lists; as it was otherwise."""
    algorithm = item.get("algorithm")
    options = []
    if isinstance(algorithm, str) and algorithm in ALGORITHMS:
        options.append(_valid_hash(algorithm).map(lambda value: {**item, "value": value}))
    if SEEDED.get("listed"):  # lookups and disputes need hashes the member's feed holds
        options.append(st.sampled_from(SEEDED["listed"]).map(lambda h: {**item, **h}))
    return st.one_of(*options) if options else st.just(item)


REASON = "synthetic: a reason for the fuzzer"  # 1 to 2000 characters; feedback needs 10


def _member_body(body: dict[str, Any], path: str) -> st.SearchStrategy[dict[str, Any]]:
    """An ack or a dispute filled in with what the member's feed published (a version and its
    state digest; a hash it lists), whatever fields the generated body lacked."""
    if path.endswith("/ack/") and SEEDED.get("acks"):
        return st.sampled_from(SEEDED["acks"]).map(lambda a: {**body, **a})
    if path == "/api/v1/sync/feedback/" and SEEDED.get("listed"):
        dispute = {"kind": "false_positive", "reason": REASON}
        return st.sampled_from(SEEDED["listed"]).map(lambda h: {**body, **h, **dispute})
    return st.just(body)


def _steered(body: dict[str, Any], path: str) -> st.SearchStrategy[dict[str, Any]]:
    """``body`` with seeded entry ids, well-formed hash values, a usable reason, and for member
    operations what the feed published, in place of generated values."""
    strategy = _member_body(body, path)
    if "reason" in body:
        strategy = strategy.map(lambda b: {**b, "reason": REASON})
    entry_ids = SEEDED.get("entry_id")
    if "entry" in body and entry_ids:
        strategy = strategy.flatmap(
            lambda b: st.sampled_from(entry_ids).map(lambda e: {**b, "entry": e})
        )
    if "algorithm" in body and "value" in body:
        existing = SEEDED.get("hashes", [])

        def hash_options(b: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
            if "entry" in b and existing:  # add/remove-hash: an entry's own hash, or another's
                return st.one_of(
                    _with_valid_value(b), st.sampled_from(existing).map(lambda h: {**b, **h})
                )
            return _with_valid_value(b)

        strategy = strategy.flatmap(hash_options)
    hashes = body.get("hashes")
    if isinstance(hashes, list) and all(isinstance(h, dict) for h in hashes):

        def valid_hashes(b: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
            # An empty list is refused before anything else is looked at, though the schema
            # cannot say so (drf-spectacular emits no minItems for allow_empty=False).
            items = b["hashes"] or [{"algorithm": "md5"}]
            return st.tuples(*map(_with_valid_value, items)).map(
                lambda hs: {**b, "hashes": list(hs)}
            )

        strategy = strategy.flatmap(valid_hashes)
    return strategy


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Half the time, give a JSON body seeded entry ids and well-formed hash values, so the fuzzer
    gets past shape validation into the services (four-eyes, duplicates, last hash, ...)."""
    if not isinstance(body, dict):
        return st.just(body)
    return st.one_of(st.just(body), _steered(body, context.operation.path))


# --- Checks ---------------------------------------------------------------------------------


def error_body_has_code_and_message(ctx: Any, response: Any, case: Any) -> None:
    """Every 4xx/5xx answer is the API's one error shape, whatever the input."""
    if response.status_code < 400:
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(
            f"{response.status_code} answer is not JSON: {response.content[:200]!r}"
        ) from None
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"{response.status_code} answer has no error object: {body!r}"
    assert isinstance(error.get("code"), str) and error["code"], f"no error.code: {body!r}"
    assert isinstance(error.get("message"), str) and error["message"], f"no error.message: {body!r}"


# Not run: ``status_code_conformance`` — the schema declares only each operation's success
# status, not its 4xx answers, so it would flag every refusal; the error-shape check covers
# those. ``positive_data_acceptance`` / ``negative_data_rejection`` — "valid by the schema" here
# still means 404 for most ids and 400 for most hash texts (formats the schema cannot express).
CHECKS = [
    not_a_server_error,
    error_body_has_code_and_message,
    content_type_conformance,
    response_schema_conformance,
]


def refused_without_a_role(ctx: Any, response: Any, case: Any) -> None:
    """A caller without a role sees nothing but who they are."""
    if case.operation.path == "/api/v1/me/":
        return
    # 404 only for URLs that do not route at all (a negative id), which is checked before auth.
    assert response.status_code in (401, 403, 404), f"{response.status_code}: {response.content!r}"
    if response.status_code == 404:
        assert json.loads(response.content)["error"]["message"] == "No such URL."


# --- Fixtures -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _app_shares_the_test_transaction(db: None) -> Iterator[None]:
    """Django closes "old" connections when a request finishes; inside the test's transaction
    that would close the connection the test runs on. Django's test client unhooks the same
    handler for the same reason."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(
    analyst: Any, reviewer: Any, member_admin: Any, settings: Any, tmp_path: Any
) -> Iterator[str]:
    """A little of everything: approved entries, pending proposals by two people, an import
    batch with a row error, a feed published in two releases (a snapshot and a delta), and a
    member entitled to it with a contact, a licence, a dispute and a token of every scope — so
    the ids, names and versions the fuzzer sends sometimes exist. Yields the member's token."""
    settings.MEDIA_ROOT = tmp_path / "media"  # uploads the fuzzer makes land here
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0  # no pacing: the fuzzer polls in bursts
    settings.HASHSYNC_MEMBER_REQUESTS_PER_MINUTE = 0  # nor budgets
    settings.HASHSYNC_BUNDLE_DOWNLOADS_PER_MINUTE = 0
    # Two hashes each, so removing one can succeed (removing an entry's last hash is refused).
    pairs = [[{"algorithm": a, "value": synthetic(a)} for a in ("md5", "sha1")] for _ in range(3)]
    feed = feed_services.feed_create(actor=member_admin, name="fuzz-feed")
    entries = [approved_entry(analyst, reviewer, hashes=p) for p in pairs]
    assert releases.release_cut() is not None
    pdq = [{"algorithm": "pdq", "value": synthetic("pdq")}]
    approved_entry(analyst, reviewer, hashes=pdq, category="B")
    assert releases.release_cut() is not None
    proposals = [propose_entry(analyst).pk, propose_entry(reviewer).pk]
    batch = invalid_import_batch(analyst)

    # The feed has no algorithm filter, so it can carry PhotoDNA: the member needs the licence.
    _, token = member_with_token(
        member_admin, name="fuzz-member", feeds=(feed.name,), photodna=True
    )
    contact = member_services.contact_add(
        actor=member_admin,
        member_name="fuzz-member",
        name="Synthetic Contact",
        email="contact@example.org",
        role="technical",
    )
    row = ApiToken.objects.get(digest=digest(token))
    dispute = sync_services.feedback_create(
        principal=MemberPrincipal(row),
        kind="false_positive",
        reason="synthetic: seeded for the fuzzer",
        **pairs[0][0],
    )
    versions = list(FeedVersion.objects.filter(feed=feed).order_by("version"))
    SEEDED.update(
        entry_id=[e.pk for e in entries],
        proposal_id=proposals,
        batch_id=[batch.pk],
        hashes=[{**h, "entry": e.pk} for p, e in zip(pairs, entries, strict=True) for h in p],
        listed=[h for p in pairs for h in p] + pdq,
        member_name=["fuzz-member"],
        feed_name=[feed.name],
        feed=[feed.name],
        client=["edge-1"],
        kind=["photodna"],
        contact_id=[contact.pk],
        token_id=[row.pk],
        feedback_id=[dispute.pk],
        sha256=[s for v in versions for s in (v.delta_sha256, v.snapshot_sha256) if s],
        from_version=[0, *(v.version for v in versions)],
        acks=[{"version": v.version, "state_digest": v.state_digest} for v in versions],
        startTimestamp=[0],  # StopNCII FetchHashes: from nothing, a page at a time
        pageSize=[1, 800],
    )
    yield token
    SEEDED.clear()


def basic_auth(username: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def superuser_headers(django_user_model: Any, settings: Any) -> dict[str, str]:
    """HTTP Basic as a superuser: every permission, so every view's logic is reachable."""
    django_user_model.objects.create_superuser("fuzz-admin", password=PASSWORD)
    return basic_auth("fuzz-admin")


@pytest.fixture
def roleless_headers(django_user_model: Any, settings: Any) -> list[dict[str, str]]:
    """No credentials at all, and HTTP Basic as a signed-in user who holds no role."""
    django_user_model.objects.create_user("fuzz-outsider", password=PASSWORD)
    return [{}, basic_auth("fuzz-outsider")]


# --- Fuzzing --------------------------------------------------------------------------------


@hypothesis.settings(max_examples=25, **FUZZ_SETTINGS)
@staff_schema.parametrize()
@pytest.mark.usefixtures("seeded")
def test_no_input_breaks_the_api(case: Any, superuser_headers: dict[str, str]) -> None:
    case.call_and_validate(headers=superuser_headers, checks=CHECKS)


@hypothesis.settings(max_examples=25, **FUZZ_SETTINGS)
@member_schema.parametrize()
def test_no_input_breaks_the_member_sync_api(case: Any, seeded: str) -> None:
    # The StopNCII-compatible operation takes the token in its own two headers.
    headers = {
        "Authorization": f"Bearer {seeded}",
        "x-functions-key": seeded,
        "Ocp-Apim-Subscription-Key": seeded,
    }
    case.call_and_validate(headers=headers, checks=CHECKS)


# Random inputs only (no coverage phase): refusal happens before any input is looked at.
@hypothesis.settings(max_examples=5, phases=[Phase.generate], **FUZZ_SETTINGS)
@guarded_schema.parametrize()
def test_callers_without_a_role_get_json_refusals(
    case: Any, roleless_headers: list[dict[str, str]]
) -> None:
    for headers in roleless_headers:
        case.call_and_validate(headers=headers, checks=[*CHECKS, refused_without_a_role])


# --- Regressions: inputs the schema cannot describe, found while fuzzing around it ------------


def test_json_body_nested_past_the_recursion_limit_is_malformed_not_a_500(
    analyst: Any, api: Any
) -> None:
    body = "[" * 100_000 + "]" * 100_000  # 200 kB, well under the body size limit

    response = api(analyst).generic(
        "POST", "/api/v1/hashes/search/", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_basic_auth_username_with_nul_is_refused_without_looking_the_user_up(
    analyst: Any, django_assert_num_queries: Any
) -> None:
    # PostgreSQL cannot compare text holding NUL: looking the name up was a 500 there. The
    # lockout (django-axes) still counts the attempt, under a stand-in name; the user table
    # is never asked.
    credentials = base64.b64encode(b"analyst\x00:whatever").decode()

    with CaptureQueriesContext(connection) as queries:
        response = Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Basic {credentials}")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert not [q for q in queries.captured_queries if '"auth_user"' in q["sql"]]


def test_request_id_with_a_trailing_newline_is_replaced_not_a_500(db: None) -> None:
    # "$" matched before the newline, and the id went into the response header unchanged.
    response = Client().get("/api/v1/me/", HTTP_X_REQUEST_ID="abcdefgh\n")

    assert response.status_code == 401
    assert response["X-Request-ID"] != "abcdefgh\n"
    assert response.json()["error"]["request_id"] == response["X-Request-ID"]
