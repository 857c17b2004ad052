"""The auditor's API: list the events, verify the chain; nobody else may read the trail."""

from __future__ import annotations

import json

import pytest

from tests.audit.tampering import append_only_triggers_off, delete_middle
from tests.hashlist.change_tampering import release_a_forged_change

pytestmark = pytest.mark.django_db

API = "/api/v1"


# --- Who may read the trail -------------------------------------------------------------------


def test_auditor_can_list_events_and_verify_the_chain(auditor, api, history):
    client = api(auditor)

    listing = client.get(f"{API}/audit/events/")
    check = client.get(f"{API}/audit/verify/")

    assert listing.status_code == 200
    assert [e["seq"] for e in listing.json()["results"]] == [e.seq for e in history]
    assert listing.json()["results"][0]["digest"] == history[0].digest
    assert check.status_code == 200
    assert check.json()["ok"] is True
    assert check.json()["head_seq"] == history[-1].lane_seq
    assert [e["lane"] for e in listing.json()["results"]] == [0] * len(history)
    assert check.json()["findings"] == []


def test_auditor_sees_the_cross_check_findings_through_the_api(auditor, api, analyst, reviewer):
    forged = release_a_forged_change(analyst, reviewer)

    body = api(auditor).get(f"{API}/audit/verify/").json()

    assert body["ok"] is False and body["first_bad_seq"] is None
    [finding] = body["findings"]
    assert f"change {forged.change_id} " in finding and forged.md5 not in json.dumps(body)


def test_auditor_sees_a_broken_chain_through_the_api(auditor, api, history):
    with append_only_triggers_off():
        bad = delete_middle(history)

    body = api(auditor).get(f"{API}/audit/verify/").json()

    assert body["ok"] is False
    # Reported at the missing place in lane 0; the link goes to the next event present.
    assert body["first_bad_seq"] == history[3].seq and bad == history[2].seq
    assert body["first_bad_lane"] == 0
    [lane] = body["lanes"]
    assert lane["ok"] is False and lane["first_bad_lane_seq"] == history[2].lane_seq


def test_auditor_can_filter_events_by_object(auditor, api, history):
    target = history[2]
    response = api(auditor).get(
        f"{API}/audit/events/",
        {"object_type": target.object_type, "object_id": target.object_id},
    )
    assert response.status_code == 200
    expected = [
        e.seq
        for e in history
        if e.object_id == target.object_id and e.object_type == target.object_type
    ]
    assert [e["seq"] for e in response.json()["results"]] == expected


@pytest.mark.parametrize("role", ["analyst", "member_admin", "outsider"])
@pytest.mark.parametrize("path", ["audit/events/", "audit/verify/"])
def test_only_auditors_can_read_the_audit_trail(request, api, history, role: str, path: str):
    user = request.getfixturevalue(role)
    response = api(user).get(f"{API}/{path}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "results" not in response.json()
