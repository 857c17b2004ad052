"""How staff reach the staff API (``accounts.authentication``): personal ``hsp_`` tokens with
exactly their owner's role, refused in words when revoked, expired, their owner deactivated or
not a token at all; bad tokens throttled per address; HTTP Basic only where it is turned on,
and a Bearer challenge where it is not; member and staff tokens each refused on the other's API.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from accounts import services
from accounts.authentication import StaffTokenAuthentication
from accounts.models import StaffToken
from audit.models import AuditEvent
from hashsync import tokens
from hashsync.errors import NotAuthenticated
from tests.factories import member_with_token
from tests.utils import assert_error

pytestmark = pytest.mark.django_db

PASSWORD = "synthetic-staff-password"
CREATE_HINT = "Account → API tokens"


def issue(user: Any, name: str = "script", **kwargs: Any) -> str:
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=True)
    return services.staff_token_create(actor=user, name=name, **kwargs)[1]


def row(secret: str) -> StaffToken:
    return StaffToken.objects.get(digest=tokens.digest(secret))


def bearer(path: str, secret: str, method: str = "get", **extra: Any) -> Any:
    return getattr(APIClient(), method)(path, HTTP_AUTHORIZATION=f"Bearer {secret}", **extra)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def basic_off(settings: Any) -> None:
    """The production configuration of the staff API (settings refuse Basic on there)."""
    settings.HASHSYNC_STAFF_BASIC_AUTH = False


# --- a token acts with exactly its owner's role ---------------------------------------------

# GET routes that each admit some roles and refuse others (docs/api.md, Roles).
ROUTES = {
    "me": {"analyst", "reviewer", "member_admin", "auditor", "outsider"},
    "entry-list": {"analyst", "reviewer", "auditor"},
    "review-queue": {"reviewer"},
    "audit-events": {"auditor"},
    "member-list": {"member_admin", "auditor"},
    "feed-list": {"analyst", "reviewer", "member_admin", "auditor"},
}


@pytest.mark.parametrize("role", ["analyst", "reviewer", "member_admin", "auditor", "outsider"])
def test_a_token_opens_the_staff_api_with_exactly_its_owners_role(make_user, role, basic_off):
    user = make_user(None if role == "outsider" else role)
    secret = issue(user)

    for name, allowed in ROUTES.items():
        response = bearer(reverse(name), secret)
        if role in allowed:
            assert response.status_code == 200, (name, response.content[:300])
        else:
            assert_error(response, 403, "permission_denied")
    me = bearer(reverse("me"), secret).json()
    assert me["username"] == user.username


def test_a_token_writes_as_its_owner_without_a_csrf_token(analyst, new_hash, basic_off):
    secret = issue(analyst)
    body = {
        "category": "C",
        "age_group": "11-13",
        "hashes": [{"algorithm": "md5", "value": new_hash("md5")}],
    }
    client = APIClient(enforce_csrf_checks=True)
    response = client.post(
        reverse("propose-create"), body, format="json", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )

    assert response.status_code == 201, response.content[:300]
    assert response.json()["author"] == analyst.username


def test_the_bearer_scheme_is_case_insensitive(analyst):
    secret = issue(analyst)
    response = APIClient().get(reverse("me"), HTTP_AUTHORIZATION=f"bearer {secret}")
    assert response.status_code == 200


# --- refusals that say what happened and what to do ----------------------------------------


def test_a_revoked_token_stops_working_on_the_next_request(analyst):
    secret = issue(analyst)
    assert bearer(reverse("me"), secret).status_code == 200

    services.staff_token_revoke(actor=analyst, token_id=row(secret).pk)
    response = bearer(reverse("me"), secret)

    error = assert_error(response, 401, "authentication_failed")
    assert "revoked" in error["message"] and CREATE_HINT in error["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_token_is_refused(analyst):
    secret = issue(analyst, expires_in_days=1)
    StaffToken.objects.filter(digest=tokens.digest(secret)).update(
        created_at=timezone.now() - dt.timedelta(days=2),
        expires_at=timezone.now() - dt.timedelta(seconds=1),
    )

    error = assert_error(bearer(reverse("me"), secret), 401, "authentication_failed")
    assert "expired" in error["message"] and CREATE_HINT in error["message"]


def test_a_deactivated_users_token_is_refused(analyst):
    secret = issue(analyst)
    analyst.is_active = False
    analyst.save()

    error = assert_error(bearer(reverse("me"), secret), 401, "authentication_failed")
    assert "deactivated" in error["message"]
    # Reactivated, the same token works again: deactivation is not revocation.
    analyst.is_active = True
    analyst.save()
    assert bearer(reverse("me"), secret).status_code == 200


def _swap(secret: str, at: int) -> str:
    other = "a" if secret[at] != "a" else "b"
    return secret[:at] + other + secret[at + 1 :]


def _malformed(secret: str) -> dict[str, str]:
    return {
        "wrong checksum": _swap(secret, 10),
        "checksum changed": _swap(secret, len(secret) - 1),
        "truncated": secret[:-1],
        "prefix only": "hsp_",
        "another prefix": "hsq_" + secret[4:],
        "not ascii": secret[:-1] + "é",
        "junk": "opensesame",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "wrong checksum",
        "checksum changed",
        "truncated",
        "prefix only",
        "another prefix",
        "not ascii",
        "junk",
    ],
)
def test_a_malformed_token_is_refused_without_a_query(analyst, kind):
    presented = _malformed(issue(analyst))[kind]
    request = APIView().initialize_request(
        APIRequestFactory().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {presented}")
    )

    with CaptureQueriesContext(connection) as queries, pytest.raises(NotAuthenticated) as refused:
        StaffTokenAuthentication().authenticate(request)

    assert queries.captured_queries == []
    assert "'Bearer hsp_…'" in refused.value.message and CREATE_HINT in refused.value.message


@pytest.mark.parametrize("kind", ["wrong checksum", "truncated", "not ascii", "junk"])
def test_a_malformed_token_is_a_json_401_that_does_not_echo_it(analyst, kind):
    presented = _malformed(issue(analyst))[kind]
    response = bearer(reverse("me"), presented)

    assert_error(response, 401, "authentication_failed")
    assert presented not in response.content.decode()


def test_a_well_formed_token_never_issued_is_not_valid(analyst):
    issue(analyst)
    unknown = tokens.STAFF.generate()

    response = bearer(reverse("me"), unknown)

    error = assert_error(response, 401, "authentication_failed")
    assert "not valid" in error["message"] and unknown not in response.content.decode()


def test_the_stored_digest_is_not_a_token(analyst):
    secret = issue(analyst)
    assert_error(bearer(reverse("me"), tokens.digest(secret)), 401, "authentication_failed")


# --- bad tokens are throttled per address ------------------------------------------------------


def test_repeated_bad_tokens_from_one_address_are_throttled(analyst, settings):
    settings.HASHSYNC_AUTH_FAILURE_LIMIT = 3
    settings.HASHSYNC_AUTH_FAILURE_WINDOW_SECONDS = 120
    secret = issue(analyst)
    attacker = {"REMOTE_ADDR": "192.0.2.7"}
    for guess in (tokens.STAFF.generate(), "hsp_guess", _swap(secret, 10)):
        assert_error(bearer(reverse("me"), guess, **attacker), 401, "authentication_failed")

    refused = bearer(reverse("me"), secret, **attacker)

    error = assert_error(refused, 429, "too_many_failures")
    assert refused["Retry-After"] == "120" and error["details"] == {"retry_after": 120}
    assert bearer(reverse("me"), secret, REMOTE_ADDR="192.0.2.8").status_code == 200
    cache.clear()  # the window has passed
    assert bearer(reverse("me"), secret, **attacker).status_code == 200


def test_revoked_expired_and_member_tokens_are_not_counted_as_guesses(
    analyst, member_admin, settings
):
    settings.HASHSYNC_AUTH_FAILURE_LIMIT = 1
    revoked = issue(analyst, name="revoked")
    services.staff_token_revoke(actor=analyst, token_id=row(revoked).pk)
    _, member_token = member_with_token(member_admin)
    good = issue(analyst, name="good")

    for _ in range(3):
        assert_error(bearer(reverse("me"), revoked), 401, "authentication_failed")
        assert_error(bearer(reverse("me"), member_token), 401, "not_authenticated")

    assert bearer(reverse("me"), good).status_code == 200


def test_bad_member_and_staff_tokens_share_one_budget_per_address(analyst, settings):
    settings.HASHSYNC_AUTH_FAILURE_LIMIT = 2
    secret = issue(analyst)
    attacker = {"REMOTE_ADDR": "192.0.2.9"}
    for _ in range(2):
        bearer(reverse("sync-feeds"), tokens.MEMBER.generate(), **attacker)

    assert_error(bearer(reverse("me"), secret, **attacker), 429, "too_many_failures")


# --- last use, recorded at most once a minute --------------------------------------------------


def _token_updates(queries: CaptureQueriesContext) -> list[str]:
    table = StaffToken._meta.db_table
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith(f'UPDATE "{table}"')]


def test_the_first_use_is_recorded(analyst):
    secret = issue(analyst)
    assert row(secret).last_used_at is None
    before = timezone.now()

    assert bearer(reverse("me"), secret).status_code == 200

    used = row(secret).last_used_at
    assert used is not None and before <= used <= timezone.now()


def test_a_use_within_a_minute_of_the_last_writes_nothing(analyst):
    secret = issue(analyst)
    recent = timezone.now() - dt.timedelta(seconds=30)
    StaffToken.objects.filter(digest=tokens.digest(secret)).update(last_used_at=recent)

    with CaptureQueriesContext(connection) as queries:
        assert bearer(reverse("me"), secret).status_code == 200

    assert _token_updates(queries) == []
    assert row(secret).last_used_at == recent


def test_a_use_more_than_a_minute_after_the_last_is_recorded(analyst):
    secret = issue(analyst)
    earlier = timezone.now() - dt.timedelta(minutes=2)
    StaffToken.objects.filter(digest=tokens.digest(secret)).update(last_used_at=earlier)

    with CaptureQueriesContext(connection) as queries:
        assert bearer(reverse("me"), secret).status_code == 200

    assert len(_token_updates(queries)) == 1
    assert row(secret).last_used_at > earlier


def test_a_use_recorded_meanwhile_by_another_request_is_not_written_again(analyst):
    """Two requests that both loaded a stale last_used_at: the UPDATE's condition lets only
    the first write."""
    secret = issue(analyst)
    token = row(secret)
    assert token.last_used_at is None  # this request's copy, loaded before the other wrote
    other = timezone.now()
    StaffToken.objects.filter(pk=token.pk).update(last_used_at=other)

    from accounts.authentication import _record_use

    _record_use(token, other + dt.timedelta(seconds=5))

    assert row(secret).last_used_at == other


# --- HTTP Basic: on for the embedded demo and tests, off in production -----------------------


def test_basic_works_where_it_is_turned_on(make_user, settings):
    settings.HASHSYNC_STAFF_BASIC_AUTH = True
    user = make_user("analyst", "basic-analyst")
    user.set_password(PASSWORD)
    user.save()

    response = APIClient().get(reverse("me"), HTTP_AUTHORIZATION=basic(user.username, PASSWORD))

    assert response.status_code == 200
    anonymous = APIClient().get(reverse("me"))
    assert_error(anonymous, 401, "not_authenticated")
    assert anonymous["WWW-Authenticate"].startswith("Basic")


def test_basic_is_refused_where_it_is_turned_off_even_with_the_right_password(make_user, basic_off):
    user = make_user("analyst", "basic-analyst")
    user.set_password(PASSWORD)
    user.save()

    response = APIClient().get(reverse("me"), HTTP_AUTHORIZATION=basic(user.username, PASSWORD))

    error = assert_error(response, 401, "basic_auth_disabled")
    assert "HTTP Basic is turned off" in error["message"]
    assert "hsp_" in error["message"] and CREATE_HINT in error["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert PASSWORD not in response.content.decode()


def test_without_basic_the_challenge_is_bearer(basic_off):
    response = APIClient().get(reverse("entry-list"))

    error = assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="hashsync"'
    assert "not provided" in error["message"]


def test_without_basic_a_token_still_works(analyst, basic_off):
    assert bearer(reverse("me"), issue(analyst)).status_code == 200


def test_the_schema_shows_the_bearer_scheme_and_basic_only_where_it_is_on(api, settings):
    def schemes() -> tuple[dict[str, Any], list[Any]]:
        document = json.loads(api(None).get("/api/v1/schema/?format=json").content)
        security = document["paths"]["/api/v1/me/"]["get"]["security"]
        return document["components"]["securitySchemes"], security

    settings.HASHSYNC_STAFF_BASIC_AUTH = True
    defined, security = schemes()
    assert defined["staffToken"]["type"] == "http"
    assert defined["staffToken"]["scheme"] == "bearer"
    assert defined["basicAuth"] == {"type": "http", "scheme": "basic"}
    assert {"staffToken": []} in security and {"basicAuth": []} in security

    settings.HASHSYNC_STAFF_BASIC_AUTH = False
    defined, security = schemes()
    assert "staffToken" in defined and "basicAuth" not in defined
    assert {"staffToken": []} in security and {"basicAuth": []} not in security


# --- each kind of token on the other's API ---------------------------------------------------


def test_a_member_token_on_the_staff_api_says_where_member_tokens_work(member_admin, basic_off):
    _, member_token = member_with_token(member_admin)

    response = bearer(reverse("entry-list"), member_token)

    error = assert_error(response, 401, "not_authenticated")
    assert "member API token (hsk_…)" in error["message"] and "/api/v1/sync/" in error["message"]
    assert "hsp_" in error["message"] and "HTTP Basic" not in error["message"]
    assert member_token not in response.content.decode()


def test_a_staff_token_on_the_sync_api_says_staff_tokens_do_not_work_there(analyst):
    secret = issue(analyst)

    response = bearer(reverse("sync-feeds"), secret)

    error = assert_error(response, 401, "not_authenticated")
    assert "Staff tokens do not work there" in error["message"]
    assert "hsk_" in error["message"]
    assert secret not in response.content.decode()
    assert row(secret).last_used_at is None  # it was never looked up


def test_a_staff_token_in_the_stopncii_key_headers_is_refused_alike(analyst):
    secret = issue(analyst)

    response = APIClient().get(
        "/api/v1/stopncii/any-feed/v1/FetchHashes", HTTP_X_FUNCTIONS_KEY=secret
    )

    error = assert_error(response, 401, "not_authenticated")
    assert "Staff tokens do not work there" in error["message"]
    assert secret not in response.content.decode()


# --- secrets stay secret ------------------------------------------------------------------------


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every logger at DEBUG (including django.request, which settings keep at ERROR)."""
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_a_token_never_reaches_the_logs_or_the_audit_trail(analyst, all_logs, settings):
    settings.HASHSYNC_AUTH_FAILURE_LIMIT = 3
    secret = issue(analyst)
    revoked = issue(analyst, name="to revoke")
    bad = [_swap(secret, 10), tokens.STAFF.generate(), secret[:-1]]

    bearer(reverse("me"), secret)
    bearer(reverse("entry-list"), secret, method="post")
    bearer(reverse("sync-feeds"), secret)
    services.staff_token_revoke(actor=analyst, token_id=row(revoked).pk)
    bearer(reverse("me"), revoked)
    for guess in bad:
        bearer(reverse("me"), guess, REMOTE_ADDR="192.0.2.50")
    bearer(reverse("me"), secret, REMOTE_ADDR="192.0.2.50")  # throttled

    records = all_logs.records
    assert records, "nothing was logged: the capture is not working"
    logged = all_logs.text + "\n".join(r.getMessage() for r in records)
    recorded = json.dumps(
        list(AuditEvent.objects.values("object_id", "before", "after", "reason")), default=str
    )
    for value in (secret, revoked, *bad):
        assert value not in logged and value not in recorded
        assert value[12:] not in logged and value[12:] not in recorded
    for value in (secret, revoked):
        assert tokens.digest(value) not in logged and tokens.digest(value) not in recorded


def test_the_api_index_names_personal_tokens_for_staff():
    index = APIClient().get(reverse("api-index")).json()
    assert "Bearer hsp_" in index["authentication"]["staff"]
    assert "hsk_" in index["authentication"]["members"]
