"""Schemathesis over the API's OpenAPI schema: every operation, generated inputs, no 500, every answer as documented."""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from reviewer import review
from reviewer.api import api
from tests.factories import import_bytes, nomadic_analysis, nomadic_event, nomadic_result

EXAMPLES = int(
    os.environ.get("SCHEMA_EXAMPLES", "25")
)  # per operation: bounds the suite's time (more: SCHEMA_EXAMPLES=500)

# The schema the server serves at /api/openapi.json (tests/test_api.py checks it is served).
schema = schemathesis.openapi.from_dict(json.loads(json.dumps(api.get_openapi_schema(), default=str)))
schema.app = get_wsgi_application()
known: dict = {}  # the fixture batch's ids, for the hook below


@schema.hook
def map_path_parameters(context, path_parameters):
    """Two generated ids in three name the fixture's batch or one of its events, so operations get past their 404."""
    if not path_parameters or not known:
        return path_parameters
    batch_id, event_id = path_parameters.get("batch_id"), path_parameters.get("event_id")
    if isinstance(batch_id, int) and batch_id % 3:
        path_parameters["batch_id"] = known["batch"]
    if isinstance(event_id, int) and event_id % 3:
        path_parameters["event_id"] = known["events"][event_id % len(known["events"])]
    return path_parameters


@pytest.fixture
def api_data(db, api_tokens, staff, nomadic_source):
    cache.clear()
    results = [nomadic_result(f"v{n}", [nomadic_event(label=f"e{n}{k}", approval=a, t_start=f"00:0{k}", t_end=f"00:0{k + 1}")
                                        for k, a in enumerate(["pending", "approved", "rejected"])]) for n in range(3)]  # fmt: skip
    batch = import_bytes(json.dumps(nomadic_analysis("b-schema", results)).encode(), "b-schema.json").batch
    review.decide(batch.events.first(), "invalid", staff)
    known.update(batch=batch.pk, events=list(batch.events.values_list("pk", flat=True)))
    # The WSGI handler closes the database connection after each request, as in production;
    # here that connection holds the test's transaction (Django's test client skips it too).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {api_tokens['staff']}"}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    known.clear()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@override_settings(API_RATE_LIMIT="100000/m", ALLOWED_HOSTS=["*"])
def test_every_operation_keeps_its_schema(case, api_data):
    # Every check but two. "Schema-valid data is accepted": which filter values, source names
    # and reason codes are valid depends on the data (a batch's categories, the configured
    # sources), and the API answers those with the batch page's own 400 messages. "Invalid
    # data is rejected": a generated invalid part can vanish when the request is encoded (an
    # extra query parameter whose value is null is not sent), leaving a valid request that
    # rightly succeeds. Negative cases are still generated: no 500, answers as documented.
    case.call_and_validate(headers=api_data, excluded_checks=[positive_data_acceptance, negative_data_rejection])
