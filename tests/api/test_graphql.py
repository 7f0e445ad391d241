"""`POST /graphql`: the queries `weave.init` sends (captured from weave 0.54), executed by
graphql-core against our users and projects, under the project rule."""

from django.contrib.auth.models import Group

from scoring.models import Project
from tests import factories

URL = "/graphql"
PROJECT_QUERY = (
    "query Project($name: String!, $entityName: String!) {\n"
    "  project(name: $name, entityName: $entityName) {\n    name\n  }\n}"
)
UPSERT_MODEL = (
    "mutation UpsertModel($name: String!, $id: String, $entity: String!, $description: String, $repo: String) {\n"
    "  upsertModel(\n    input: {\n      id: $id\n      name: $name\n      entityName: $entity\n"
    "      description: $description\n      repo: $repo\n    }\n  ) {\n    model {\n      name\n"
    "      description\n    }\n  }\n}"
)
VIEWER = "query DefaultEntity {\n  viewer {\n    username\n    defaultEntity {\n      name\n    }\n  }\n}"


def gql(client, query, variables=None):
    body = {"query": query} if variables is None else {"query": query, "variables": variables}
    response = client.post(URL, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_project_lookup_of_a_new_project_is_null(api, user):
    """The project query answers null for a project that does not exist yet."""
    assert gql(api, PROJECT_QUERY, {"entityName": "alice", "name": "demo"}) == {"data": {"project": None}}


def test_project_lookup_finds_an_existing_project(api, user):
    """An existing project is found by entity and name."""
    factories.project("alice/demo")
    assert gql(api, PROJECT_QUERY, {"entityName": "alice", "name": "demo"}) == {"data": {"project": {"name": "demo"}}}


def test_upsert_model_creates_the_project(api, user):
    """upsertModel creates the project (once) and answers it."""
    variables = {"name": "demo", "entity": "alice", "description": None}
    assert gql(api, UPSERT_MODEL, variables) == {
        "data": {"upsertModel": {"model": {"name": "demo", "description": None}}}
    }
    gql(api, UPSERT_MODEL, variables)
    assert list(Project.objects.values_list("entity", "name")) == [("alice", "demo")]


def test_upsert_model_in_a_group_entity(api, user):
    """A member of group E may create projects of entity E."""
    user.groups.add(Group.objects.create(name="team"))
    result = gql(api, UPSERT_MODEL, {"name": "demo", "entity": "team"})
    assert result["data"]["upsertModel"]["model"]["name"] == "demo"


def test_upsert_model_of_another_entity_is_a_permission_error(api, user):
    """Creating a project of an entity the user does not belong to is a GraphQL error with W&B's
    PERMISSION_ERROR code (the one the weave client turns into a clear message)."""
    result = gql(api, UPSERT_MODEL, {"name": "demo", "entity": "bob"})
    assert result["data"] == {"upsertModel": None}
    assert [e["extensions"]["code"] for e in result["errors"]] == ["PERMISSION_ERROR"]
    assert result["errors"][0]["path"] == ["upsertModel"]
    assert not Project.objects.exists()


def test_project_lookup_of_another_entity_is_a_permission_error(api, user):
    """Looking up another entity's project is a permission error too, not a silent null."""
    result = gql(api, PROJECT_QUERY, {"entityName": "bob", "name": "demo"})
    assert [e["extensions"]["code"] for e in result["errors"]] == ["PERMISSION_ERROR"]


def test_viewer_is_the_authenticated_user(api, user):
    """viewer answers the user's name and default entity (their own)."""
    assert gql(api, VIEWER) == {"data": {"viewer": {"username": "alice", "defaultEntity": {"name": "alice"}}}}


def test_entity_read_only_follows_the_project_rule(api, user):
    """entity(name).readOnly is false for the user's own entity, true for others."""
    query = "query Entity($e: String!) { viewer { username } entity(name: $e) { readOnly } }"
    assert gql(api, query, {"e": "alice"})["data"]["entity"] == {"readOnly": False}
    assert gql(api, query, {"e": "bob"})["data"]["entity"] == {"readOnly": True}


def test_unknown_field_is_a_graphql_error(api, user):
    """A field the schema does not have is a validation error, and nothing is executed."""
    result = gql(api, "query { viewer { username apiKeys } }")
    assert result["data"] is None
    assert "apiKeys" in result["errors"][0]["message"]


def test_syntax_error_is_a_graphql_error(api, user):
    """A query that does not parse is a GraphQL syntax error."""
    result = gql(api, "query { viewer { ")
    assert result["data"] is None
    assert result["errors"][0]["message"].startswith("Syntax Error")


def test_missing_variable_is_a_graphql_error(api, user):
    """A required variable left out is reported by the executor."""
    result = gql(api, PROJECT_QUERY, {"entityName": "alice"})
    assert "$name" in result["errors"][0]["message"]


def test_body_without_query_is_422(api, user):
    """A body that is not a GraphQL request is a 422 naming the missing field."""
    response = api.post(URL, {"variables": {}}, format="json")
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "query"]]


def test_unauthenticated_is_401(client, db):
    """Without credentials /graphql is a 401, like every API route."""
    response = client.post(URL, {"query": VIEWER}, content_type="application/json")
    assert response.status_code == 401
