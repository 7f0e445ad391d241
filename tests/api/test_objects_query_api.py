"""`POST /objs/query`: a project's object versions, filtered as Weave's ObjectVersionFilter."""

import pytest

from scoring.services.objects import object_store
from tests import factories

URL = "/objs/query"
OP_VAL = {"_type": "CustomWeaveType", "weave_type": {"type": "Op"}, "files": {"obj.py": "abc"}}


@pytest.fixture
def objects(db, user):
    project = factories.project()
    object_store(project=project, object_id="answer", val=OP_VAL)
    factories.scorer(class_name="ValidJSONScorer")
    factories.scorer(class_name="ValidJSONScorer", description="v1")
    factories.scorer(class_name="ValidXMLScorer")


def query(api, **body):
    response = api.post(URL, {"project_id": "alice/demo", **body}, format="json")
    assert response.status_code == 200, response.content
    return [(o["object_id"], o["version_index"]) for o in response.json()["objs"]]


def test_all_versions_in_creation_order(api, objects):
    """Without a filter every version comes back, oldest first, in ObjSchema's shape."""
    assert query(api) == [("answer", 0), ("ValidJSONScorer", 0), ("ValidJSONScorer", 1), ("ValidXMLScorer", 0)]
    obj = api.post(URL, {"project_id": "alice/demo", "limit": 1}, format="json").json()["objs"][0]
    assert obj["kind"] == "op" and obj["is_latest"] == 1 and obj["val"] == OP_VAL


def test_latest_only_and_object_ids(api, objects):
    """`latest_only` keeps the latest version of each object; `object_ids` picks objects."""
    assert query(api, filter={"latest_only": True, "object_ids": ["ValidJSONScorer"]}) == [("ValidJSONScorer", 1)]


def test_is_op_and_classes(api, objects):
    """`is_op` separates ops from objects; class filters use base and leaf classes."""
    assert query(api, filter={"is_op": True}) == [("answer", 0)]
    assert query(api, filter={"leaf_object_classes": ["ValidXMLScorer"]}) == [("ValidXMLScorer", 0)]
    assert len(query(api, filter={"base_object_classes": ["Scorer"]})) == 3
    assert query(api, filter={"exclude_base_object_classes": ["Scorer"]}) == [("answer", 0)]


def test_sort_and_page(api, objects):
    """`sort_by` object_id or created_at, then `offset` and `limit`."""
    assert query(api, sort_by=[{"field": "created_at", "direction": "desc"}], offset=1, limit=2) == [
        ("ValidJSONScorer", 1),
        ("ValidJSONScorer", 0),
    ]


def test_metadata_only_leaves_out_values(api, objects):
    """`metadata_only` answers empty values."""
    response = api.post(URL, {"project_id": "alice/demo", "metadata_only": True}, format="json")
    assert {str(o["val"]) for o in response.json()["objs"]} == {"{}"}


def test_unsupported_sort_field_is_422(api, objects):
    """Sorting by another field is a 422 naming it."""
    response = api.post(
        URL, {"project_id": "alice/demo", "sort_by": [{"field": "val", "direction": "asc"}]}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "sort_by", 0, "field"]


def test_project_that_does_not_exist_has_no_objects(api, user):
    """A project nobody wrote to yet answers an empty list."""
    assert query(api) == []


def test_project_of_another_user_is_403(client_for, make_user, objects):
    """Listing follows the project rule."""
    response = client_for(make_user("bob")).post(URL, {"project_id": "alice/demo"}, format="json")
    assert response.status_code == 403
