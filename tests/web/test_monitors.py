"""The monitors pages through Django's test client: a project's monitors with their counts, a
monitor with its versions, activate and deactivate as the weave client publishes them (CSRF, the
project rule), and the monitors a scorer's page lists."""

import re

import pytest
from django.test import Client
from django.utils import timezone

from scoring.engine.monitors import outbox_consume
from scoring.engine.run import task_run
from scoring.models import Object, ScoringTask
from scoring.selectors.monitors import projects_monitored_forget
from scoring.services.calls import calls_complete
from scoring.services.objects import object_create
from scoring.weave.ids import wb_user_id_for
from scoring.weave.monitors import sampled_in
from tests import factories

PROJECT = "alice/demo"
OP = "weave:///alice/demo/op/answer:abc"
NAME = "json-check"
MONITORS = "/alice/demo/weave/monitors"
MONITOR = f"{MONITORS}/{NAME}"


def monitor_val(scorer_ref: str, **fields) -> dict:
    """A monitor's value as `weave.Monitor(...).activate()` publishes it."""
    return {
        "_type": "Monitor",
        "_class_name": "Monitor",
        "_bases": ["Object", "BaseModel"],
        "name": NAME,
        "description": None,
        "sampling_rate": 1.0,
        "scorers": [scorer_ref],
        "op_names": ["weave:///alice/demo/op/answer:*"],
        "query": None,
        "is_traced": True,
        "active": True,
        "scorer_debounce_config": None,
        **fields,
    }


def publish(user, scorer_ref: str, **fields) -> Object:
    obj = object_create(user=user, project_id=PROJECT, object_id=NAME, val=monitor_val(scorer_ref, **fields))
    projects_monitored_forget(obj.project_id)
    return obj


def end_calls(user, outputs: dict[str, object]) -> None:
    """Log finished calls of the monitored op, match them, and score every task the monitor queued."""
    now = timezone.now()
    calls_complete(
        user=user,
        batch=[
            {
                "project_id": PROJECT,
                "id": call_id,
                "trace_id": "t-" + call_id,
                "op_name": OP,
                "started_at": now,
                "ended_at": now,
                "attributes": {},
                "inputs": {},
                "summary": {},
                "output": output,
            }
            for call_id, output in outputs.items()
        ],
    )
    outbox_consume()
    for task_id in ScoringTask.objects.filter(status="queued").values_list("pk", flat=True):
        task_run(task_id=task_id)


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def row_of(html: str, name: str) -> str:
    return re.search(rf'<tr data-monitor="{re.escape(name)}">(.*?)</tr>', html, re.S).group(1)


def numbers(row: str) -> list[str]:
    return [cell.strip() for cell in re.findall(r'<td class="num">([^<]*)', row)]


def test_list_shows_each_monitor_with_its_counts(signed_in, user):
    """The monitors page shows the latest version of each monitor with its op, sampling rate,
    scorer linked to its page, state, and the counts of that version: matched, sampled out (by the
    same hash the matcher uses), scored, failed, and latency percentiles once scores exist."""
    scorer_ref = factories.scorer(PROJECT)
    publish(user, scorer_ref, sampling_rate=0.5)
    outputs = {f"c{i}": "{}" if i % 3 else {"not": "a string"} for i in range(12)}
    end_calls(user, outputs)
    kept = [call_id for call_id in outputs if sampled_in(NAME, call_id, 0.5)]
    failed = [call_id for call_id in kept if not isinstance(outputs[call_id], str)]
    assert 0 < len(kept) < 12 and failed  # the fixed ids exercise both sampling and failures

    html = signed_in.get(MONITORS).content.decode()
    row = row_of(html, NAME)
    assert "status-active" in row and ">answer</code>" in row
    name, digest = scorer_ref.rsplit("/", 1)[1].split(":")
    assert f'href="/alice/demo/weave/objects/{name}/versions/{digest}"' in row
    matched, sampled_out, scored, failures, p50, p99 = numbers(row)[1:7]
    assert numbers(row)[0] == "50%"
    assert (matched, sampled_out) == ("12", str(12 - len(kept)))
    assert (scored, failures) == (str(len(kept) - len(failed)), str(len(failed)))
    assert p50.endswith(" s") and p99.endswith(" s")


def test_monitor_page_lists_its_versions(signed_in, user):
    """A monitor's page shows what it asks for and every version newest first, each with its
    state, its counts and a link to its job once it has matched calls."""
    scorer_ref = factories.scorer(PROJECT)
    publish(user, scorer_ref)
    end_calls(user, {"a": "{}"})
    publish(user, scorer_ref, sampling_rate=0.25)

    html = signed_in.get(MONITOR).content.decode()
    facts = re.search(r'id="monitor-facts">(.*?)</dl>', html, re.S).group(1)
    assert "25%" in facts and "ValidJSONScorer" in facts
    versions = re.search(r'id="monitor-versions">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", versions, re.S)
    assert [re.search(r">(v\d+)<", row).group(1) for row in rows] == ["v1", "v0"]
    assert numbers(rows[1])[:3] == ["1", "0", "1"] and "/weave/jobs/" in rows[1]
    assert numbers(rows[0])[:3] == ["0", "0", "0"] and "no calls yet" in rows[0]


def test_deactivate_and_activate_publish_new_versions(signed_in, user):
    """Deactivate publishes a new version by the signed-in user whose value is the latest one
    with `active` false, and the list shows it inactive; activating again publishes the first
    content again, so that version is the latest once more, as the weave client's
    deactivate() and activate() do."""
    first = publish(user, factories.scorer(PROJECT))

    response = signed_in.post(f"{MONITOR}/deactivate", {"next": MONITORS})
    assert response.status_code == 302 and response["Location"] == MONITORS
    latest = Object.objects.get(object_id=NAME, is_latest=True)
    assert latest.version_index == 1 and latest.wb_user_id == wb_user_id_for(user)
    assert latest.val == {**first.val, "active": False}
    page = signed_in.get(MONITORS).content.decode()
    assert "json-check is inactive (version v1)" in page
    assert "status-inactive" in row_of(page, NAME) and "Activate json-check" in row_of(page, NAME)

    signed_in.post(f"{MONITOR}/activate")
    latest = Object.objects.get(object_id=NAME, is_latest=True)
    assert latest.digest == first.digest and Object.objects.filter(object_id=NAME).count() == 2
    assert "status-active" in row_of(signed_in.get(MONITORS).content.decode(), NAME)


def test_short_op_names_become_op_refs_when_toggled(signed_in, user):
    """A monitor stored with a short op name (published without a client) gets it expanded to the
    project's op ref on deactivation, as Monitor.deactivate() normalizes op names."""
    publish(user, factories.scorer(PROJECT), op_names=["answer", "weave.genai.turn_ended"])
    signed_in.post(f"{MONITOR}/deactivate")
    latest = Object.objects.get(object_id=NAME, is_latest=True)
    assert latest.val["op_names"] == ["weave:///alice/demo/op/answer:*", "weave.genai.turn_ended"]
    assert latest.val["active"] is False


def test_toggle_needs_csrf_and_post(user):
    """Without the CSRF token the deactivate form is refused (403) and publishes nothing; with the
    token from the page it works; a GET is not allowed."""
    publish(user, factories.scorer(PROJECT))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(f"{MONITOR}/deactivate").status_code == 403
    assert Object.objects.filter(object_id=NAME).count() == 1
    assert client.get(f"{MONITOR}/deactivate").status_code == 405

    page = client.get(MONITORS).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post(f"{MONITOR}/deactivate", {"csrfmiddlewaretoken": token}).status_code == 302
    assert Object.objects.get(object_id=NAME, is_latest=True).val["active"] is False


def test_another_projects_user_gets_404(client, user, make_user):
    """bob may not see or change alice's monitors: the list, the monitor page and both forms
    answer 404, as for a project that does not exist, and no version is published."""
    publish(user, factories.scorer(PROJECT))
    client.force_login(make_user("bob"))
    for url in (MONITORS, MONITOR, MONITORS.replace("demo", "nothing")):
        assert client.get(url).status_code == 404, url
    for action in ("activate", "deactivate"):
        assert client.post(f"{MONITOR}/{action}").status_code == 404
    assert Object.objects.filter(object_id=NAME).count() == 1


def test_unknown_monitor_is_404(signed_in, user):
    """A monitor name the project does not have answers the HTML 404 page, for the page and the forms."""
    factories.project(PROJECT)
    assert signed_in.get(f"{MONITORS}/nothing").status_code == 404
    assert signed_in.post(f"{MONITORS}/nothing/activate").status_code == 404


def test_scorer_page_lists_the_monitors_that_use_it(signed_in, user):
    """A scorer's object page lists the monitors whose latest version uses that scorer version,
    linked to their pages, and another scorer's page does not."""
    used = factories.scorer(PROJECT)
    other = factories.scorer(PROJECT, object_id="Other")
    publish(user, used)
    for ref, expected in ((used, True), (other, False)):
        name, digest = ref.rsplit("/", 1)[1].split(":")
        html = signed_in.get(f"/alice/demo/weave/objects/{name}/versions/{digest}").content.decode()
        section = re.search(r'id="h-monitors">.*?</section>', html, re.S).group(0)
        assert (f'href="{MONITOR}"' in section) is expected, ref


def test_calls_page_links_to_monitors(signed_in, user):
    """The project's navigation, on the calls page, links to its monitors."""
    factories.call(PROJECT)
    assert f'href="{MONITORS}"' in signed_in.get("/alice/demo/weave").content.decode()


def test_no_monitors_says_how_to_publish_one(signed_in, user):
    """A project without monitors says so and how to publish one."""
    factories.project(PROJECT)
    assert "No monitors." in signed_in.get(MONITORS).content.decode()
