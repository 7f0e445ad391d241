"""Schemathesis against the service's own /openapi.json, every operation, authenticated, a bounded
number of generated requests each: no answer is a 5xx, and none violates the schema."""

import json

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from scoring.services.api_keys import api_key_create
from tests.conftest import basic

pytestmark = pytest.mark.slow

# Generated requests per operation. Schemathesis's explicit phase (a boundary-value case per field)
# is left out: it makes hundreds of requests per operation, minutes for the whole API.
EXAMPLES_PER_OPERATION = 10


def served_openapi() -> dict:
    """The document GET /openapi.json serves, built the same way (at collection, before any server)."""
    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


schema = schemathesis.openapi.from_dict(served_openapi())


@pytest.fixture
def key(transactional_db, make_user):
    _, value = api_key_create(user=make_user("alice"), name="schemathesis")
    return value


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_schema(case, key, live_server):
    """Generated requests, authenticated as alice, never get a 5xx nor an answer outside the
    operation's documented responses."""
    case.call_and_validate(
        base_url=live_server.url,
        headers={"Authorization": basic(key)},
        checks=[schemathesis.checks.not_a_server_error, response_schema_conformance],
    )
