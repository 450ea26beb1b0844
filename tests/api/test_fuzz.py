"""Property-based fuzzing of every endpoint from /openapi.json (schemathesis, in-process).

For each operation, positive and negative cases are generated from the document and sent
through the app's TestClient: never a 500, every 4xx in the one error shape, and every answer
conforms to the document (status code, content type, row schema). The operations under
/clusters/{cluster} are fuzzed twice: as documented (any cluster name: mostly 404s) and with the
dataset's cluster as the only name, so that their cases reach the queries.
"""

from __future__ import annotations

import copy

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.openapi import openapi_document
from tests.api.dataset import load_dataset
from tests.rows import CLUSTER

EXAMPLES = 25
DOCUMENT = openapi_document()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# Negative cases need parameters to break.
CASES = [(op, POSITIVE) for op in OPERATIONS] + [
    (op, NEGATIVE) for op in OPERATIONS if DOCUMENT["paths"][op.path]["get"].get("parameters")
]


def _in_the_dataset_cluster(document: dict) -> dict:
    fixed = copy.deepcopy(document)
    for item in fixed["paths"].values():
        for parameter in item["get"].get("parameters", []):
            if parameter["in"] == "path":
                parameter["schema"] = {"type": "string", "enum": [CLUSTER]}
    return fixed


IN_CLUSTER = [
    result.ok()
    for result in schemathesis.openapi.from_dict(
        _in_the_dataset_cluster(DOCUMENT)
    ).get_all_operations()
]
CASES += [
    (op, mode) for op in IN_CLUSTER if "{cluster}" in op.path for mode in (POSITIVE, NEGATIVE)
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def assert_error_shape(response):
    body = response.json()
    assert list(body) == ["detail"], body
    if response.status_code == 422:
        assert body["detail"] and all(
            list(item) == ["loc", "msg", "type"] and item["loc"][0] == "query"
            for item in body["detail"]
        ), body
    else:
        assert isinstance(body["detail"], str), body


def test_every_documented_operation_is_fuzzed():
    # 13 of the reference, /cluster-names, /budgets, /cost-anomalies, the 11 list endpoints
    # again under /clusters/{cluster}, /openapi.json and /metrics.
    assert len(OPERATIONS) == 29


@pytest.fixture
def api(engine, client):
    with engine.begin() as conn:
        load_dataset(conn)
    return client


def test_no_input_gives_a_500_and_every_error_has_the_shape(api):
    # One database for every operation: creating one per case would cost more than the cases.
    for operation, mode in CASES:
        fuzz(api, operation, mode)


def fuzz(api, operation, mode):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        response = api.request(
            kwargs["method"],
            kwargs["url"],
            params=kwargs.get("params"),
            headers=kwargs.get("headers"),
        )
        assert response.status_code < 500, (operation.path, mode, kwargs, response.text)
        if response.status_code >= 400:
            assert_error_shape(response)
        case.validate_response(response, checks=CHECKS)

    run()
