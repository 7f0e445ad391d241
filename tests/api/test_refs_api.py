"""`POST /refs/read_batch`: values by ref, walking into them, through nested refs and into table
rows, as Weave resolves them."""

import pytest

from scoring.services.objects import object_store
from scoring.services.tables import table_store
from tests import factories

URL = "/refs/read_batch"


def read(api, refs):
    response = api.post(URL, {"refs": refs}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["vals"]


@pytest.fixture
def dataset(db, user):
    """A model object, and a dataset whose rows are in a table."""
    project = factories.project()
    model = object_store(project=project, object_id="model", val={"_type": "M", "params": {"t": [0.5, 1.0]}})
    digest, row_digests = table_store(project=project, rows=[{"q": "a"}, {"q": "b"}])
    ds = object_store(
        project=project,
        object_id="ds",
        val={"_type": "Dataset", "rows": f"weave:///alice/demo/table/{digest}", "model": model_ref(model)},
    )
    return model, ds, row_digests


def model_ref(obj, kind="object"):
    return f"weave:///alice/demo/{kind}/{obj.object_id}:{obj.digest}"


def test_reads_object_values_in_order(api, dataset):
    """Each ref reads its object's value, in the order asked."""
    model, ds, _ = dataset
    vals = read(api, [model_ref(ds), model_ref(model)])
    assert vals[1] == {"_type": "M", "params": {"t": [0.5, 1.0]}}
    assert vals[0]["_type"] == "Dataset"


def test_walks_keys_and_indexes(api, dataset):
    """`attr`/`key` and `index` path parts walk into the value."""
    model, _, _ = dataset
    assert read(api, [model_ref(model) + "/attr/params/key/t/index/1"]) == [1.0]


def test_walks_through_nested_refs_into_table_rows(api, dataset):
    """A path goes on through refs met in the value, and `id` picks a table row by digest."""
    _, ds, row_digests = dataset
    vals = read(api, [model_ref(ds) + f"/attr/rows/id/{row_digests[1]}", model_ref(ds) + "/attr/model/attr/params"])
    assert vals == [{"q": "b"}, {"t": [0.5, 1.0]}]


def test_latest_and_version_index(api, dataset):
    """`latest` and `v<N>` name versions too."""
    model, _, _ = dataset
    assert read(api, ["weave:///alice/demo/object/model:latest", "weave:///alice/demo/object/model:v0"]) == [
        model.val,
        model.val,
    ]


def test_refs_that_lead_nowhere_read_as_null(api, dataset):
    """Unknown objects, missing keys and out-of-range indexes are null, not errors."""
    model, _, _ = dataset
    refs = [
        "weave:///alice/demo/object/nothing:abc",
        model_ref(model) + "/key/missing",
        model_ref(model) + "/attr/params/key/t/index/9",
    ]
    assert read(api, refs) == [None, None, None]


def test_a_ref_that_points_back_at_itself_ends(api, user):
    """A `latest` ref inside a value that names itself again is null, not an endless loop."""
    project = factories.project()
    object_store(project=project, object_id="loop", val={"x": "weave:///alice/demo/object/loop:latest/key/x"})
    assert read(api, ["weave:///alice/demo/object/loop:latest/key/x/key/x"]) == [None]


@pytest.mark.parametrize(
    "ref",
    [
        "not a ref",
        "weave:///alice/demo/table/abc",
        "weave:///alice/demo/object/x:d/attr",
        "weave:///a/b/object/x:d/up/y",
    ],
)
def test_malformed_refs_are_422(api, user, ref):
    """A malformed ref (or a path part Weave does not know) is a 422 at its index."""
    response = api.post(URL, {"refs": ["weave:///alice/demo/object/x:d", ref]}, format="json")
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "refs", 1]]


def test_refs_into_another_users_project_are_403(client_for, make_user, dataset):
    """Reading by ref follows the project rule."""
    model, _, _ = dataset
    response = client_for(make_user("bob")).post(URL, {"refs": [model_ref(model)]}, format="json")
    assert response.status_code == 403
