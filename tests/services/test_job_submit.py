"""Submitting a job: every call and scorer resolved in the project, each bad item named by its
index, duplicates scored once, a bound on pairs, and the audit record of who asked for what."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scoring.engine.reconcile import broker_view
from scoring.models import Object, ScoringJob
from scoring.weave.ids import wb_user_id_for
from tests import factories

URL = "/calls/score"


@pytest.fixture
def ref(db, user):
    for i in range(3):
        factories.call(call_id=f"c{i}")
    return factories.scorer()


def submit(api, call_ids, scorer_refs, **extra):
    body = {"project_id": "alice/demo", "call_ids": call_ids, "scorer_refs": scorer_refs, **extra}
    return api.post(URL, body, format="json")


def test_unknown_call_ids_are_named_by_index(api, ref):
    """Every call id not in the project is a 422 entry at its index; nothing is recorded."""
    response = submit(api, ["c0", "nope", "c1", "gone"], [ref])
    assert response.status_code == 422
    assert [(d["loc"], d["type"]) for d in response.json()["detail"]] == [
        (["body", "call_ids", 1], "call_not_found"),
        (["body", "call_ids", 3], "call_not_found"),
    ]
    assert "nope" in response.json()["detail"][0]["msg"]
    assert ScoringJob.objects.count() == 0


def test_call_of_another_project_is_not_found(api, ref):
    """A call id that exists only in another project is not found in this one."""
    factories.call("alice/other", call_id="elsewhere")
    response = submit(api, ["elsewhere"], [ref])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "call_ids", 0]


@pytest.mark.parametrize(
    ("bad_ref", "type_"),
    [
        ("not a ref", "scorer_ref_invalid"),
        ("weave:///alice/demo/object/NoDigest", "scorer_ref_invalid"),
        ("weave:///alice/demo/call/c0", "scorer_ref_invalid"),
        ("weave:///alice/demo/op/ValidJSONScorer.score:abc", "scorer_ref_invalid"),
        ("weave:///bob/demo/object/ValidJSONScorer:abc", "scorer_ref_project_mismatch"),
        ("weave:///alice/demo/object/Missing:abc", "scorer_not_found"),
        ("weave:///alice/demo/object/ValidJSONScorer:wrongdigest", "scorer_not_found"),
    ],
)
def test_bad_scorer_refs_are_named_by_index(api, ref, bad_ref, type_):
    """A scorer ref that does not parse, is of another project or does not resolve is a 422 at its index."""
    response = submit(api, ["c0"], [ref, bad_ref])
    assert response.status_code == 422
    assert [(d["loc"], d["type"]) for d in response.json()["detail"]] == [(["body", "scorer_refs", 1], type_)]


def test_object_of_unsupported_class_lists_supported_classes(api, ref):
    """An object that is not a supported scorer is refused, and the error lists what is supported."""
    not_a_scorer = factories.scorer(class_name="MyCustomScorer")
    response = submit(api, ["c0"], [not_a_scorer])
    assert response.status_code == 422
    entry = response.json()["detail"][0]
    assert entry["type"] == "scorer_class_unsupported"
    assert "MyCustomScorer" in entry["msg"] and "ValidJSONScorer" in entry["msg"] and "ValidXMLScorer" in entry["msg"]


def test_scorer_ref_by_latest_and_version_is_pinned_to_a_digest(api, ref):
    """`:latest` and `:v0` resolve at submit time, and the job keeps the pinned digest."""
    digest = ref.rsplit(":", 1)[1]
    for alias in ("latest", "v0"):
        response = submit(api, ["c0"], [f"weave:///alice/demo/object/ValidJSONScorer:{alias}"])
        assert response.status_code == 200, response.content
        job = ScoringJob.objects.get(pk=response.json()["job_id"])
        assert job.scorer_refs == [f"weave:///alice/demo/object/ValidJSONScorer:{digest}"]


def test_duplicates_are_scored_once(api, ref):
    """Repeated call ids and scorer refs make one task per distinct pair."""
    xml = factories.scorer(class_name="ValidXMLScorer")
    response = submit(api, ["c0", "c1", "c0", "c1"], [ref, xml, ref])
    assert response.status_code == 200
    job = ScoringJob.objects.get(pk=response.json()["job_id"])
    assert job.tasks.count() == 4 == job.task_count
    assert set(job.tasks.values_list("call__call_id", "scorer__object_id")) == {
        ("c0", "ValidJSONScorer"),
        ("c0", "ValidXMLScorer"),
        ("c1", "ValidJSONScorer"),
        ("c1", "ValidXMLScorer"),
    }


def test_too_many_pairs_states_the_limit(api, ref, settings):
    """More distinct pairs than the configured bound is a 422 that states the bound."""
    settings.SCORING_MAX_PAIRS_PER_JOB = 2
    response = submit(api, ["c0", "c1", "c2"], [ref])
    assert response.status_code == 422
    entry = response.json()["detail"][0]
    assert entry["type"] == "too_many_pairs" and entry["loc"] == ["body"]
    assert "3" in entry["msg"] and "at most 2" in entry["msg"]


def test_server_sets_wb_user_id_and_keeps_what_the_client_sent(api, ref, user):
    """wb_user_id is the authenticated user's, whatever the client sent; the audit keeps both."""
    response = submit(api, ["c0"], [ref], wb_user_id="someone-else")
    job = ScoringJob.objects.get(pk=response.json()["job_id"])
    assert job.wb_user_id == wb_user_id_for(user)
    assert job.client_wb_user_id == "someone-else"
    assert job.user == user
    assert job.request == {
        "project_id": "alice/demo",
        "call_ids": ["c0"],
        "scorer_refs": [ref],
        "wb_user_id": "someone-else",
    }


def test_empty_lists_make_a_finished_empty_job(api, ref):
    """No calls or no scorers is a valid request that makes a job with nothing to do."""
    response = submit(api, [], [ref])
    assert response.status_code == 200
    job = ScoringJob.objects.get(pk=response.json()["job_id"])
    assert job.task_count == 0 and job.finished_at is not None


def test_submit_does_not_query_per_pair(api, user, db):
    """The number of queries does not grow with the number of pairs."""
    project = factories.project()
    refs = [factories.scorer(object_id=f"s{i}") for i in range(5)]
    for i in range(200):
        factories.call(call_id=f"k{i}")
    call_ids = [f"k{i}" for i in range(200)]
    submit(api, call_ids[:1], refs[:1])  # warm-up: the key's first use records last_used_at
    with CaptureQueriesContext(connection) as small:
        assert submit(api, call_ids[:2], refs[:1]).status_code == 200
    with CaptureQueriesContext(connection) as large:
        assert submit(api, call_ids, refs).status_code == 200
    assert len(large) == len(small)
    assert Object.objects.filter(project=project).count() == 5


def test_submit_sends_its_dispatch_message_after_commit(transactional_db, broker, api, ref):
    """Once the job is committed (on-commit hooks fire here), the broker holds its one dispatch
    message, and no task message yet: the workers fan it out."""
    assert broker_view().job_ids == frozenset()

    response = submit(api, ["c0", "c1"], [ref])

    assert response.status_code == 200
    view = broker_view()
    assert view.job_ids == frozenset({response.json()["job_id"]})
    assert view.task_ids == frozenset()
