"""Property-based API tests generated from the OpenAPI schema: whatever a client sends,
the API answers without a server error and as its schema says."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 25


def map_path_parameters(ctx, path_parameters):
    # Mostly a served domain, so that answering really runs; sometimes the random one.
    if path_parameters and "domain" in path_parameters and sum(map(ord, path_parameters["domain"])) % 4:
        path_parameters["domain"] = "legal"
    return path_parameters


def test_no_server_error_and_responses_match_the_schema(served):
    schema = schemathesis.openapi.from_asgi("/openapi.json", served.app)
    schema.hook(map_path_parameters)
    headers = served.auth("legal")
    failures: dict[str, str] = {}
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        checked.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            case.call_and_validate(headers=headers)

        try:
            run()
        except Exception as exc:  # every operation is checked; all failures are reported
            failures[operation.label] = str(exc)[:3000]
    assert "POST /v1/chat/completions" in checked and "POST /v1/domains/{domain}/ask" in checked
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
