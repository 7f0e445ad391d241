"""`POST /graphql`: the part of W&B's GraphQL API that `weave.init` uses, answered from our users
and projects: `project(name, entityName)`, the `upsertModel` mutation that creates a project
(under the project rule), `viewer` with its default entity, `entity(name)` and `serverInfo`.
Requests are parsed, validated and executed by graphql-core against the schema below, so an
unknown field or a malformed query gets GraphQL errors, as from W&B."""

import logging
from contextlib import contextmanager
from functools import cache

from drf_spectacular.utils import extend_schema_field
from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    build_schema,
    execute_sync,
    parse,
    validate,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring.api.fields import JsonObjectField, StrictStringField, WeaveObjectSerializer, unstorable_string
from scoring.errors import PermissionDenied, RequestValidationError
from scoring.selectors.projects import project_for_read, user_may_access
from scoring.services.projects import project_for_write
from scoring.weave.ids import wb_user_id_for

SCHEMA = """
type Query {
  viewer: User
  project(name: String!, entityName: String!): Project
  entity(name: String!): Entity
  serverInfo: ServerInfo
}

type Mutation {
  upsertModel(input: UpsertModelInput!): UpsertModelPayload
}

input UpsertModelInput {
  id: String
  name: String
  entityName: String
  description: String
  repo: String
}

type UpsertModelPayload {
  model: Project
  inserted: Boolean
}

type Project {
  id: ID!
  name: String!
  entityName: String!
  description: String
  createdAt: String
}

type User {
  id: ID!
  username: String
  name: String
  admin: Boolean
  defaultEntity: Entity
}

type Entity {
  id: ID!
  name: String!
  readOnly: Boolean
}

type ServerInfo {
  frontendHost: String
}
"""
logger = logging.getLogger(__name__)
PERMISSION_ERROR = "PERMISSION_ERROR"  # the code the weave client looks for


# One request's work is bounded before anything runs: tokens parsed, fields executed (every alias
# and every fragment spread counted where it is used; each `project` costs a query) and depth.
MAX_TOKENS = 2_000
MAX_FIELDS = 100
MAX_DEPTH = 8


class _TooCostly(Exception):
    pass


def _check_cost(document) -> None:
    """Refuse (GraphQLError) a document that would execute more than MAX_FIELDS fields or nest
    deeper than MAX_DEPTH, fragments expanded where they are spread; stops counting at the limit."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    count = 0

    def walk(selection_set, depth: int, spreading: frozenset) -> None:
        nonlocal count
        if depth > MAX_DEPTH:
            raise _TooCostly(f"Query is nested deeper than {MAX_DEPTH} levels")
        for selection in selection_set.selections:
            count += 1
            if count > MAX_FIELDS:
                raise _TooCostly(f"Query selects more than {MAX_FIELDS} fields (aliases and fragments included)")
            if isinstance(selection, FieldNode):
                if selection.selection_set is not None:
                    walk(selection.selection_set, depth + 1, spreading)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, depth, spreading)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in spreading or name not in fragments:
                    continue  # a cycle or an unknown fragment: validation reports it
                walk(fragments[name].selection_set, depth, spreading | {name})

    try:
        for definition in document.definitions:
            if not isinstance(definition, FragmentDefinitionNode):
                walk(definition.selection_set, 1, frozenset())
    except _TooCostly as exc:
        raise GraphQLError(str(exc), extensions={"code": "QUERY_TOO_COMPLEX"}) from None


def run_graphql(query: str, *, root_value, context_value, variable_values, operation_name) -> ExecutionResult:
    """Parse (at most MAX_TOKENS tokens), bound the cost, validate, then execute."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
        _check_cost(document)
    except GraphQLError as exc:
        return ExecutionResult(data=None, errors=[exc])
    errors = validate(schema(), document)
    if errors:
        return ExecutionResult(data=None, errors=errors)
    return execute_sync(
        schema(),
        document,
        root_value=root_value,
        context_value=context_value,
        variable_values=variable_values,
        operation_name=operation_name,
    )


@cache
def schema() -> GraphQLSchema:
    return build_schema(SCHEMA)


class Root:
    """Resolvers of the root fields; graphql-core calls the method named like the field."""

    def __init__(self, user):
        self.user = user

    def viewer(self, info):
        username = self.user.get_username()
        return {
            "id": wb_user_id_for(self.user),
            "username": username,
            "name": self.user.get_full_name() or username,
            "admin": self.user.is_superuser,
            "defaultEntity": _entity(username, read_only=False),
        }

    def project(self, info, name: str, entityName: str):
        with _as_graphql_errors():
            project = project_for_read(user=self.user, project_id=f"{entityName}/{name}")
        return None if project is None else _project(project)

    def upsertModel(self, info, input: dict):
        entity, name = input.get("entityName"), input.get("name")
        if not entity or not name:
            raise GraphQLError("upsertModel needs input.name and input.entityName")
        with _as_graphql_errors():
            project = project_for_write(user=self.user, project_id=f"{entity}/{name}")
        return {"model": _project(project), "inserted": None}

    def entity(self, info, name: str):
        if unstorable_string(name) is not None:
            raise GraphQLError(
                "entity name must not contain NUL or lone surrogates", extensions={"code": "BAD_USER_INPUT"}
            )
        return _entity(name, read_only=not user_may_access(self.user, name))

    def serverInfo(self, info):
        return {"frontendHost": info.context.build_absolute_uri("/").rstrip("/")}


@contextmanager
def _as_graphql_errors():
    """The project rule's 403 and 422 as GraphQL errors, with W&B's code for a permission error."""
    try:
        yield
    except PermissionDenied as exc:
        raise GraphQLError(exc.message, extensions={"code": PERMISSION_ERROR}) from exc
    except RequestValidationError as exc:
        raise GraphQLError(exc.errors[0]["msg"], extensions={"code": "BAD_USER_INPUT"}) from exc


def _project(project) -> dict:
    return {
        "id": str(project.pk),
        "name": project.name,
        "entityName": project.entity,
        "description": None,
        "createdAt": project.created_at.isoformat(),
    }


def _entity(name: str, *, read_only: bool) -> dict:
    return {"id": name, "name": name, "readOnly": read_only}


@extend_schema_field({"type": "object"})
class GraphqlData(serializers.JSONField):
    """The `data` of a GraphQL answer: an object, or null when the request was refused."""


class GraphqlApi(APIView):
    class InputSerializer(WeaveObjectSerializer):
        query = StrictStringField()
        variables = JsonObjectField(required=False, allow_null=True)
        operationName = StrictStringField(required=False, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        data = GraphqlData(allow_null=True)
        errors = serializers.ListField(child=serializers.JSONField(), required=False)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = run_graphql(
            data["query"],
            root_value=Root(request.user),
            context_value=request,
            variable_values=data.get("variables"),
            operation_name=data.get("operationName"),
        )
        for problem in result.errors or ():
            if problem.original_error is not None and not isinstance(problem.original_error, GraphQLError):
                # Whatever a resolver raised unexpectedly (a database error) stays in the log: its
                # text describes the server, not the request.
                logger.error("GraphQL resolver failed", exc_info=problem.original_error)
                problem.message = "Internal error while resolving this field."
        return Response(self.OutputSerializer(result.formatted).data)
