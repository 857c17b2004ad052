"""The front page and the API index: what a newcomer meets first."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
def test_front_page_links_the_api_index_schema_and_docs():
    response = Client().get("/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    for expected in (
        "/api/v1/",
        "/api/v1/schema/",
        'href="http://testserver/api/v1/docs/"',
        'href="http://testserver/api/v1/docs/redoc/"',
        "docs/sync-api.md",
        "client/README.md",
    ):
        assert expected in page


@pytest.mark.django_db
def test_api_index_answers_json_without_credentials(api):
    response = api(None).get("/api/v1/")

    assert response.status_code == 200
    body = response.json()
    assert body["api_version"] == "v1"
    assert body["links"]["schema"] == "http://testserver/api/v1/schema/"
    assert body["links"]["docs"] == "http://testserver/api/v1/docs/"
    assert body["links"]["docs_redoc"] == "http://testserver/api/v1/docs/redoc/"
    assert body["links"]["sync_feeds"] == "http://testserver/api/v1/sync/feeds/"
    assert body["documentation"]["member sync API"] == "docs/sync-api.md"


@pytest.mark.django_db
def test_api_index_refuses_other_methods_with_a_json_error(api):
    response = api(None).post("/api/v1/", {}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_front_page_refuses_post():
    assert Client().post("/").status_code == 405
