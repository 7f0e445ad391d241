"""`manage.py score`: submit through the same service as the API, and follow a job to its end."""

import pytest
from django.core.management import CommandError, call_command

from scoring.models import ScoringJob
from tests import factories
from tests.conftest import score_and_wait


@pytest.fixture
def ref(user):
    factories.call(call_id="c1")
    factories.call(call_id="c2", output="nope")
    return factories.scorer()


def test_score_submits_a_job(ref, capsys):
    """Without --wait, the command records the job and says how many pairs are queued."""
    call_command("score", "--project", "alice/demo", "--calls", "c1", "c2", "--scorers", ref)
    job = ScoringJob.objects.get()
    assert job.task_count == 2
    assert f"Job {job.pk}: 2 pair(s) queued." in capsys.readouterr().out


def test_score_explains_a_refused_request(ref):
    """A bad call id is refused with the same reasons the API gives."""
    with pytest.raises(CommandError, match=r"body\.call_ids\.1: Call 'missing' does not exist"):
        call_command("score", "--project", "alice/demo", "--calls", "c1", "missing", "--scorers", ref)
    assert ScoringJob.objects.count() == 0


@pytest.mark.slow
def test_score_wait_follows_the_job_to_its_end(ref, worker):
    """With --wait, a real worker scores the job and the command ends with its summary."""
    result = score_and_wait("alice/demo", ["c1", "c2"], [ref])
    assert result.returncode == 0, result.stderr
    assert "succeeded: 2 succeeded." in result.stdout
    assert "2/2" in result.stderr  # the progress bar reached the end
