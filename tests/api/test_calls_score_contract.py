"""`POST /calls/score`: the request body exactly as the contract's CallsScoreReq, errors as its
HTTPValidationError, and the semantic checks on calls and scorers."""

import json

import pytest

from scoring.models import ScoringJob, ScoringTask
from tests import factories

URL = "/calls/score"


@pytest.fixture
def setup(db, user):
    calls = [factories.call(call_id=f"c{i}") for i in range(3)]
    ref = factories.scorer()
    return calls, ref


def post(api, body, **kwargs):
    return api.post(URL, body, format="json", **kwargs)


def body(**over):
    return {"project_id": "alice/demo", "call_ids": ["c0"], "scorer_refs": [], **over}


def test_valid_request_records_a_job_and_one_task_per_pair(api, setup):
    """A valid request answers 200 with the job id, and stores the job with a task per pair."""
    calls, ref = setup
    response = post(api, body(call_ids=["c0", "c1", "c2"], scorer_refs=[ref]))
    assert response.status_code == 200, response.content
    job = ScoringJob.objects.get(pk=response.json()["job_id"])
    assert response.json()["task_count"] == 3
    assert job.tasks.count() == 3
    assert set(job.tasks.values_list("status", flat=True)) == {ScoringTask.Status.PENDING}


def test_missing_fields_are_reported_each(api, setup):
    """Each missing required field is one `missing` error located at body.<field>."""
    response = post(api, {})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {"loc": ["body", "project_id"], "msg": "Field required", "type": "missing"},
            {"loc": ["body", "call_ids"], "msg": "Field required", "type": "missing"},
            {"loc": ["body", "scorer_refs"], "msg": "Field required", "type": "missing"},
        ]
    }


@pytest.mark.parametrize(
    ("override", "loc", "type_"),
    [
        ({"project_id": 5}, ["body", "project_id"], "string_type"),
        ({"project_id": None}, ["body", "project_id"], "string_type"),
        ({"call_ids": "c0"}, ["body", "call_ids"], "list_type"),
        ({"call_ids": {"a": 1}}, ["body", "call_ids"], "list_type"),
        ({"call_ids": ["c0", 7]}, ["body", "call_ids", 1], "string_type"),
        ({"scorer_refs": [None]}, ["body", "scorer_refs", 0], "string_type"),
        ({"wb_user_id": 12}, ["body", "wb_user_id"], "string_type"),
        ({"extra": 1}, ["body", "extra"], "extra_forbidden"),
    ],
)
def test_type_errors_are_located_and_named_as_pydantic_does(api, setup, override, loc, type_):
    """A wrong JSON type is an error (never coerced), located down to the list index."""
    response = post(api, body(**override))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [(d["loc"], d["type"]) for d in detail] == [(loc, type_)]


def test_body_that_is_not_json(api, setup):
    """A body that is not JSON is a 422 json_invalid."""
    response = api.post(URL, b"{not json", content_type="application/json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("payload", [[], "text", 3, None])
def test_body_that_is_not_an_object(api, setup, payload):
    """A JSON body that is not an object is a 422 model_attributes_type at body."""
    response = api.post(URL, json.dumps(payload), content_type="application/json")
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "type": "model_attributes_type",
        }
    ]


def test_body_nested_too_deeply_is_json_invalid(api, setup):
    """A body nested deeper than the JSON parser can follow is a 422 json_invalid, not a 500."""
    deep = "[" * 100_000 + "]" * 100_000
    response = api.post(URL, '{"project_id": ' + deep + "}", content_type="application/json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_nan_is_json_invalid(api, setup):
    """NaN is not JSON: a 422 json_invalid."""
    response = api.post(URL, '{"project_id": NaN}', content_type="application/json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("project_id", ["nodash", "/demo", "alice/", "a/b/c", "x" * 200 + "/demo", "alice/d\x00"])
def test_malformed_project_id_is_422(api, setup, project_id):
    """A project id that is not `<entity>/<project>` within the name limits is a 422 at project_id."""
    response = post(api, body(project_id=project_id))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "project_id"]


@pytest.mark.parametrize("version", ["v²", "v99999999999999999999", "v-1"])
def test_odd_scorer_versions_are_not_found(api, setup, version):
    """A version that is no digest nor v<N> within range is simply not found (422), never a 500."""
    response = post(api, body(scorer_refs=[f"weave:///alice/demo/object/ValidJSONScorer:{version}"]))
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "scorer_not_found"
