"""Benchmark 3: LLM-judge throughput against a local OpenAI-compatible server that answers after a
fixed latency, against the ideal of the provider concurrency limit / latency.

    .venv/bin/python bench/llm_judge.py [--pairs 2000] [--latency 0.2] [--concurrency 32]
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

sys.path.insert(0, str(harness.ROOT))
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402


def publish_judge(project_id: str) -> str:
    from scoring.models import Project
    from scoring.services.objects import object_store

    entity, name = project_id.split("/")
    project = Project.objects.get(entity=entity, name=name)
    model_val = {
        "_type": "LLMStructuredCompletionModel",
        "_class_name": "LLMStructuredCompletionModel",
        "_bases": ["Model", "Object", "BaseModel"],
        "llm_model_id": "bench/judge-model",
        "default_params": {"temperature": 0.0, "max_tokens": 50, "response_format": "json_object"},
    }
    model = object_store(project=project, object_id="judge-model", val=model_val)
    judge_val = {
        "_type": "LLMAsAJudgeScorer",
        "_class_name": "LLMAsAJudgeScorer",
        "_bases": ["Scorer", "Object", "BaseModel"],
        "model": f"weave:///{project_id}/object/judge-model:{model.digest}",
        "scoring_prompt": "Question: {q}\nAnswer: {output}\nReply in JSON.",
    }
    judge = object_store(project=project, object_id="judge", val=judge_val)
    return f"weave:///{project_id}/object/judge:{judge.digest}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2_000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args()

    harness.setup_django()
    harness.reset_database()
    harness.flush_broker()
    import httpx

    from scoring.models import TASK_UNFINISHED, ScoringTask

    key = harness.make_user_and_key("bench")
    call_ids = harness.load_calls("bench/judge", args.pairs)
    ref = publish_judge("bench/judge")
    with FakeOpenAI(latency=args.latency) as provider:
        env = {
            "SCORING_PROVIDERS": json.dumps(
                {"bench": {"base_url": provider.base_url, "concurrency": args.concurrency}}
            ),
            "SCORING_OUTBOUND_ALLOWLIST": "127.0.0.1",
        }
        print(f"machine: {harness.machine()}")
        print(
            f"workers: rundramatiq --processes {args.processes} --threads {args.threads}; provider concurrency "
            f"{args.concurrency}, latency {args.latency * 1000:.0f} ms"
        )
        with harness.web_server(workers=1), harness.worker_processes(args.processes, args.threads, **env):
            time.sleep(3)
            http = httpx.Client(base_url=f"http://127.0.0.1:{harness.PORT}", auth=("api", key), timeout=300)
            started = time.time()
            body = {"project_id": "bench/judge", "call_ids": call_ids, "scorer_refs": [ref]}
            response = http.post("/calls/score", json=body)
            assert response.status_code == 200, response.text[:300]
            job_id = response.json()["job_id"]
            tasks = ScoringTask.objects.filter(job_id=job_id)
            while tasks.filter(status__in=TASK_UNFINISHED).exists():
                time.sleep(0.1)
            last = max(tasks.values_list("finished_at", flat=True)).timestamp()
            succeeded = tasks.filter(status="succeeded").count()
            failed = dict(tasks.exclude(status="succeeded").values_list("error_type", "id"))
            assert succeeded == args.pairs, f"{succeeded} of {args.pairs} succeeded; failures: {failed}"
        rate = args.pairs / (last - started)
        ideal = args.concurrency / args.latency
        print(f"LLM judge: {args.pairs:,} pairs, {rate:,.1f} pairs/s; ideal {ideal:,.1f}; ratio {rate / ideal:.2f}")
        print(f"provider saw at most {provider.max_in_flight} requests in flight")


if __name__ == "__main__":
    main()
