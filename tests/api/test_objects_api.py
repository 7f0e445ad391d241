"""Weave's object endpoints: `/obj/create` computes Weave's digests and versions objects by
content, `/obj/read` finds a version by digest, `latest` or `v<N>`."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from scoring.models import Object
from scoring.weave.ids import wb_user_id_for

PROJECT = "alice/demo"

# From the capture of the weave client: the `answer` op and the ValidJSONScorer it published.
OP_VAL = {
    "_type": "CustomWeaveType",
    "weave_type": {"type": "Op"},
    "files": {"obj.py": "m6uFawO8YdpytI9nxZM5ywq7mS3si90bAJD0OLYH7TY"},
}
OP_DIGEST = "uUIV6oW81xzKAQCFgcI81YemxMBDEj3bfTXcZYomXYU"
SCORER_VAL = {
    "_type": "ValidJSONScorer",
    "name": None,
    "description": None,
    "column_map": None,
    "score": "weave:///alice/demo/op/ValidJSONScorer.score:e1UQuCMv9XeRFrgYv5PBtiqjav0GCEs3VJ6fnQDn4wY",
    "summarize": "weave:///alice/demo/op/Scorer.summarize:kXItGo03ynxVl7CJCp6AGrtpOQe02L5QqsVGyFYXnWo",
    "_class_name": "ValidJSONScorer",
    "_bases": ["Scorer", "Object", "BaseModel"],
}
SCORER_DIGEST = "wIQxdaDKcunWifrg0DR2Mu92AdgZ93PLaXltGDiXPdU"


def obj_body(object_id="answer", val=None, **over):
    """An object as the weave client sends it (captured)."""
    return {
        "project_id": PROJECT,
        "object_id": object_id,
        "val": OP_VAL if val is None else val,
        "builtin_object_class": None,
        "expected_digest": None,
        "wb_user_id": None,
        **over,
    }


def create(client, **kwargs):
    return client.post("/obj/create", {"obj": obj_body(**kwargs)}, format="json")


def read(client, object_id="answer", digest="latest", project_id=PROJECT, **extra):
    body = {"project_id": project_id, "object_id": object_id, "digest": digest, **extra}
    return client.post("/obj/read", body, format="json")


def locs(response):
    assert response.status_code == 422, response.content
    return [(d["loc"], d["type"]) for d in response.json()["detail"]]


# create


def test_op_digest_matches_weaves(api):
    """The captured op value gets the digest Weave's server gave it, and is stored as an op."""
    response = create(api)
    assert response.status_code == 200, response.content
    assert response.json() == {"digest": OP_DIGEST, "object_id": "answer"}
    assert Object.objects.get().kind == Object.Kind.OP


def test_scorer_digest_and_classes_match_weaves(api):
    """The captured scorer gets Weave's digest, its leaf class and its base class below Object."""
    response = create(api, object_id="ValidJSONScorer", val=SCORER_VAL)
    assert response.json() == {"digest": SCORER_DIGEST, "object_id": "ValidJSONScorer"}
    obj = Object.objects.get()
    assert (obj.kind, obj.base_object_class, obj.leaf_object_class) == ("object", "Scorer", "ValidJSONScorer")


def test_same_content_twice_is_the_same_version(api):
    """Creating identical content again answers the same digest and stores no new version."""
    first = create(api).json()
    second = create(api).json()
    assert first == second
    assert Object.objects.count() == 1
    assert read(api).json()["obj"]["version_index"] == 0


def test_new_content_is_the_next_version_and_the_latest(api):
    """New content for an object id is version_index + 1, and `is_latest` moves to it."""
    first = create(api).json()["digest"]
    second = create(api, val={**OP_VAL, "files": {"obj.py": "other"}}).json()["digest"]
    assert first != second
    old, new = read(api, digest=first).json()["obj"], read(api, digest=second).json()["obj"]
    assert (old["version_index"], old["is_latest"]) == (0, 0)
    assert (new["version_index"], new["is_latest"]) == (1, 1)


def test_expected_digest_that_matches_is_accepted(api):
    """An expected_digest equal to the computed digest is fine."""
    assert create(api, expected_digest=OP_DIGEST).status_code == 200


def test_expected_digest_that_differs_is_422(api):
    """An expected_digest that is not the content's digest is a 422 naming it; nothing is stored."""
    response = create(api, expected_digest="not-the-digest")
    assert locs(response) == [(["body", "obj", "expected_digest"], "digest_mismatch")]
    assert "not-the-digest" in response.json()["detail"][0]["msg"]
    assert not Object.objects.exists()


def test_wb_user_id_is_set_by_the_server(api, user):
    """The stored object's wb_user_id is the authenticated user's, whatever the client sent."""
    create(api, wb_user_id="someone-else")
    assert Object.objects.get().wb_user_id == wb_user_id_for(user)


def test_builtin_object_class_is_the_base_class(api):
    """builtin_object_class names the object's base class."""
    create(api, object_id="judge-model", val={"model": "x"}, builtin_object_class="LLMStructuredCompletionModel")
    assert Object.objects.get().base_object_class == "LLMStructuredCompletionModel"


def test_unknown_fields_are_ignored(api):
    """Extra keys the client may send (at either level) do not make the request fail."""
    response = api.post("/obj/create", {"obj": obj_body(size_bytes=3), "trace": 1}, format="json")
    assert response.status_code == 200, response.content


# read


def test_read_back_in_weaves_obj_schema(api, user):
    """A created object reads back in Weave's ObjSchema, is_latest as 0/1, created_at with Z."""
    create(api)
    obj = read(api).json()["obj"]
    created_at = obj.pop("created_at")
    assert created_at.endswith("Z")
    assert obj == {
        "project_id": PROJECT,
        "object_id": "answer",
        "deleted_at": None,
        "digest": OP_DIGEST,
        "version_index": 0,
        "is_latest": 1,
        "kind": "op",
        "base_object_class": None,
        "leaf_object_class": None,
        "val": OP_VAL,
        "wb_user_id": wb_user_id_for(user),
    }


@pytest.mark.parametrize(("version", "expected_index"), [("latest", 1), ("v0", 0), ("v1", 1)])
def test_read_by_latest_or_version_number(api, version, expected_index):
    """`latest` finds the newest version and `v<N>` the N-th."""
    create(api)
    create(api, val={**OP_VAL, "files": {"obj.py": "other"}})
    response = read(api, digest=version)
    assert response.status_code == 200, response.content
    assert response.json()["obj"]["version_index"] == expected_index


def test_read_by_digest(api):
    """A digest finds its version."""
    create(api)
    assert read(api, digest=OP_DIGEST).json()["obj"]["digest"] == OP_DIGEST


def test_metadata_only_leaves_val_empty(api):
    """With metadata_only, everything but val is returned."""
    create(api)
    obj = read(api, metadata_only=True).json()["obj"]
    assert (obj["digest"], obj["val"]) == (OP_DIGEST, {})


@pytest.mark.parametrize("version", ["nope", "v7", "v99999999999", "v" + "9" * 5000, "v²"])
def test_read_of_a_missing_version_is_404(api, version):
    """A digest or version that does not exist is a 404 with a detail."""
    create(api)
    response = read(api, digest=version)
    assert response.status_code == 404
    assert "detail" in response.json()


def test_read_in_a_project_that_does_not_exist_is_404(api):
    """Reading from a project nobody has written to is a 404."""
    assert read(api, project_id="alice/never").status_code == 404


# access


def test_another_users_project_is_forbidden(api, client_for, make_user):
    """Bob may neither create objects in alice/demo nor read them."""
    create(api)
    bob = client_for(make_user("bob"))
    assert create(bob).status_code == 403
    assert read(bob).status_code == 403
    assert Object.objects.count() == 1


def test_members_of_the_entity_group_may_create_and_read(client_for, make_user):
    """A user in the Django Group named like the entity may act on its objects."""
    carol = make_user("carol")
    carol.groups.add(Group.objects.create(name="alice"))
    client = client_for(carol)
    assert create(client).status_code == 200
    assert read(client).status_code == 200


@pytest.mark.parametrize("url", ["/obj/create", "/obj/read"])
def test_no_credentials_is_401(db, url):
    """The object endpoints require authentication."""
    response = APIClient().post(url, {}, format="json")
    assert response.status_code == 401
    assert response.has_header("WWW-Authenticate")


# validation


def test_create_missing_fields_are_each_reported(api):
    """Each missing required field is one `missing` error at body.obj.<field>."""
    response = api.post("/obj/create", {"obj": {}}, format="json")
    assert locs(response) == [(["body", "obj", field], "missing") for field in ("project_id", "object_id", "val")]


def test_null_val_is_an_object_too(api):
    """`val` may be null (Weave's `Any`), which is content like any other."""
    response = api.post("/obj/create", {"obj": {**obj_body(), "val": None}}, format="json")
    assert response.status_code == 200, response.content
    assert read(api).json()["obj"]["val"] is None


@pytest.mark.parametrize(
    ("override", "loc", "type_"),
    [
        ({"object_id": "a/b"}, ["body", "obj", "object_id"], "string_pattern_mismatch"),
        ({"object_id": ""}, ["body", "obj", "object_id"], "string_too_short"),
        ({"object_id": "x" * 129}, ["body", "obj", "object_id"], "string_too_long"),
        ({"object_id": 5}, ["body", "obj", "object_id"], "string_type"),
        ({"builtin_object_class": 5}, ["body", "obj", "builtin_object_class"], "string_type"),
        ({"expected_digest": []}, ["body", "obj", "expected_digest"], "string_type"),
        ({"project_id": "alice"}, ["body", "obj", "project_id"], "value_error"),
        ({"val": {"k": "\u0000"}}, ["body", "obj", "val", "k"], "string_unstorable"),
        ({"val": {"_class_name": "C" * 129}}, ["body", "obj", "val", "_class_name"], "string_too_long"),
        ({"val": {"_bases": ["B" * 129, "Object"]}}, ["body", "obj", "val", "_bases", 0], "string_too_long"),
    ],
)
def test_create_errors_are_located(api, override, loc, type_):
    """A known field that is malformed is a 422 at its location, and nothing is stored."""
    response = api.post("/obj/create", {"obj": {**obj_body(), **override}}, format="json")
    assert locs(response) == [(loc, type_)]
    assert not Object.objects.exists()


def test_read_type_errors_are_located(api):
    """A read with a non-string digest is a 422 at body.digest."""
    response = api.post("/obj/read", {"project_id": PROJECT, "object_id": "answer", "digest": 1}, format="json")
    assert locs(response) == [(["body", "digest"], "string_type")]
