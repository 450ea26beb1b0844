"""Every reference path is served and documented with its parameters (docs/api.md §6, §7).

The reference list is the project's own test data, in tests/api/reference_endpoints.py.
"""

from __future__ import annotations

import pytest

from tests.api.reference_endpoints import REFERENCE_ENDPOINTS

ENDPOINTS = {path: list(parameters) for path, parameters in REFERENCE_ENDPOINTS.items()}


def test_the_reference_was_read():
    assert len(ENDPOINTS) == 13
    assert ENDPOINTS["/costs-per-user"] == [
        "from",
        "to",
        "hub",
        "component",
        "user",
        "usergroup",
        "limit",
    ]


@pytest.fixture
def document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
def test_every_reference_path_is_served_and_documented(client, document, path):
    response = client.get(path)
    assert response.status_code == 200, response.text
    operation = document["paths"][path]["get"]
    documented = {p["name"]: p for p in operation.get("parameters", [])}
    for name in ENDPOINTS[path]:
        assert name in documented, f"{path} does not document {name}"
        assert documented[name]["in"] == "query"
        assert documented[name]["schema"], name
    if ENDPOINTS[path]:
        assert "422" in operation["responses"]


def test_parameters_have_real_types(document):
    parameters = {
        p["name"]: p["schema"] for p in document["paths"]["/costs-per-user"]["get"]["parameters"]
    }
    assert {"type": "string", "format": "date"} in parameters["from"]["anyOf"]
    assert {"type": "string", "format": "date-time"} in parameters["to"]["anyOf"]
    assert parameters["limit"] == {"type": "integer", "minimum": 1}
    assert parameters["hub"] == {"type": "array", "items": {"type": "string"}}


def test_every_row_has_a_schema(document):
    schemas = document["components"]["schemas"]
    row = document["paths"]["/costs-per-user"]["get"]["responses"]["200"]["content"]
    assert row["application/json"]["schema"]["items"] == {"$ref": "#/components/schemas/UserCost"}
    assert list(schemas["UserCost"]["properties"]) == [
        "date",
        "hub",
        "component",
        "user",
        "value",
        "usergroup",
    ]
    assert schemas["UserCost"]["properties"]["date"] == {"type": "string", "format": "date"}
    for path, item in document["paths"].items():
        content = item["get"]["responses"]["200"]["content"]
        if "text/csv" in content:
            ref = content["application/json"]["schema"]["items"]
            assert ref.get("$ref", "").startswith("#/components/schemas/") or ref == {
                "type": "string"
            }, path
