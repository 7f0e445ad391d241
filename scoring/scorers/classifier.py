"""Weave's ClassifierMonitor: its LLM judges on one model asked in one provider request, with the
prompt header and footer of weave.flow.monitor, and the one JSON answer split into one per judge."""

import json
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from scoring.scorers import prices, providers
from scoring.scorers.base import Outcome, ScorerFailed, SpendMeter
from scoring.scorers.llm import LLMAsAJudgeScorer

# weave.flow.monitor's _OP_CALL_CLASSIFIER_PROMPT_HEADER and _CLASSIFIER_PROMPT_FOOTER, verbatim.
HEADER = "\n".join(
    [
        "You are a multi-classifier evaluation system. Evaluate a traced function call against multiple binary classifiers.",  # noqa: E501
        "<trace>",
        "  <metadata>",
        "    <operation>{op_name}</operation>",
        "    <status>{status}</status>",
        "  </metadata>",
        "  <input>",
        "  {inputs}",
        "  </input>",
        "  <output>",
        "  {output}",
        "  </output>",
        "  <exception>",
        "  {exception}",
        "  </exception>",
        "  <source_code>",
        "  {op_source}",
        "  </source_code>",
        "</trace>",
        "Evaluate the trace above against each classifier below. Base your judgment strictly on the evidence in the trace.",  # noqa: E501
    ]
)
FOOTER = "\n".join(
    [
        "Respond with ONLY a JSON object. No markdown fences, no explanation — just the JSON.",
        "Use the exact classifier name from each <classifier> tag.",
        '{{"classifiers": {{',
        '    "ExactName1": {{"is_match": true, "confidence": 0.95, "reason": "one sentence citing specific evidence from the trace"}},',  # noqa: E501
        '    "ExactName2": {{"is_match": false, "confidence": 0.80, "reason": "one sentence citing specific evidence from the trace"}},',  # noqa: E501
        "  }}",
        "}}",
        "Rules:",
        '- "classifiers": include an entry for EVERY classifier (match or not) with is_match, confidence, and reason.',
        '- "is_match": true if this classifier applies (the trace exhibits this issue), false otherwise.',
        '- "confidence": your certainty from 0.0 (uncertain) to 1.0 (certain)',
        '- "reason": cite specific evidence from the trace (quote error messages, describe output content, reference status). Be concise (one sentence). Do NOT give generic reasons like "no evidence found".',  # noqa: E501
        '- If multiple classifiers could apply, choose the MOST SPECIFIC ones. For example, "Request Too Large" is more specific than "Bad Request", and "Ratelimited" is more specific than "Bad Response". Only set is_match to true for the most specific matches.',  # noqa: E501
    ]
)
JSON_ANSWER = {"type": "json_object"}


def merge_key(scorer: Any) -> tuple | None:
    """What judges must share to be asked in one request (the model, the messages before the
    prompt, the sampling parameters; the answer's format is the merged prompt's own), or None for
    a scorer that is no LLM judge."""
    if not isinstance(scorer, LLMAsAJudgeScorer):
        return None
    model = scorer.model
    params = {k: v for k, v in model.params.items() if k != "response_format"}
    return (model.llm_model_id, json.dumps(model.messages_template, sort_keys=True), json.dumps(params, sort_keys=True))


@dataclass(frozen=True)
class Judgement:
    """One judge's share of the merged answer: its outcome, or why it has none."""

    outcome: Outcome | None = None
    error: ScorerFailed | None = None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def labels(judges: list[tuple[LLMAsAJudgeScorer, dict]]) -> list[str]:
    """The name each judge has in the prompt and the answer: its own, numbered from the second
    judge of the same name on (the answer is keyed by name)."""
    seen: dict[str, int] = {}
    out = []
    for judge, _ in judges:
        seen[judge.name] = seen.get(judge.name, 0) + 1
        out.append(judge.name if seen[judge.name] == 1 else f"{judge.name} ({seen[judge.name]})")
    return out


def merged_prompt(judges: list[tuple[LLMAsAJudgeScorer, dict]], call: dict) -> str:
    """The one prompt: the trace, then each judge's own prompt (rendered with its arguments) in a
    <classifier> tag named as the answer must name it, then the answer's format."""
    header = HEADER.format(
        op_name=call.get("op_name") or "",
        status="error" if call.get("exception") else "success",
        inputs=_text(call.get("inputs") or {}),
        output=_text(call.get("output")),
        exception=call.get("exception") or "",
        op_source="",  # the server never sees the op's source code
    )
    parts = [header]
    for (judge, arguments), label in zip(judges, labels(judges), strict=True):
        criteria = judge.messages(arguments)[-1]["content"]
        parts.append(f'<classifier name="{label}">\n{criteria}\n</classifier>')
    parts.append(FOOTER.format())
    prompt = "\n".join(parts)
    # Each judge's prompt is bounded already; the trace is bounded once more for the whole.
    limit = settings.SCORING_JUDGE_PROMPT_MAX_CHARS * (len(judges) + 1)
    if len(prompt) > limit:
        raise ScorerFailed(
            f"The merged classifier prompt is over {limit:,} characters (SCORING_JUDGE_PROMPT_MAX_CHARS per judge)",
            error_type="PromptTooLarge",
        )
    return prompt


def classify(
    judges: list[tuple[LLMAsAJudgeScorer, dict]], call: dict, meter: SpendMeter | None = None
) -> list[Judgement]:
    """Ask every judge (all with one merge_key) in one request; one Judgement
    per judge, in order. The request's token usage and price are on the first outcome only, so
    that they are counted once; its spend is reserved and settled through `meter`, as a judge's
    own request is. Raises what providers.chat_completion raises (the whole request failed, so
    every judge did), what the meter raises (BudgetExhausted), and ScorerFailed when the answer is
    no JSON object of classifiers."""
    model = judges[0][0].model
    meter = meter or SpendMeter()
    messages = [*model.messages_template, {"role": "user", "content": merged_prompt(judges, call)}]
    hold = meter.reserve(
        scorer_name=judges[0][0].name,
        llm_model_id=model.llm_model_id,
        prompt_chars=sum(len(str(m.get("content") or "")) for m in messages),
        max_tokens=model.params.get("max_tokens"),
    )
    completion, cost = None, None
    try:
        completion = providers.chat_completion(
            llm_model_id=model.llm_model_id, messages=messages, params={**model.params, "response_format": JSON_ANSWER}
        )
        provider, name = providers.split_model_id(model.llm_model_id)
        cost = prices.price_or_none(
            provider, name, completion.usage["prompt_tokens"], completion.usage["completion_tokens"]
        )
    finally:
        meter.settle(hold, usage=completion.usage if completion else None, cost=cost)
    entries = _classifiers(completion.content)
    usage = {model.llm_model_id: {**completion.usage, "requests": 1}}
    costs = {model.llm_model_id: cost} if cost else {}
    judgements = []
    for label in labels(judges):
        entry = entries.get(label)
        if not isinstance(entry, dict) or not isinstance(entry.get("is_match"), bool):
            shown = "no entry" if entry is None else f"the entry {json.dumps(entry)[:500]}"
            error = ScorerFailed(
                f"The classifier answer has {shown} for {label!r}, which needs an object with a boolean "
                "is_match (and confidence, reason)",
                error_type="ClassifierAnswerInvalid",
            )
            judgements.append(Judgement(error=error))
            continue
        judgements.append(Judgement(Outcome(entry, usage=usage, costs=costs)))
        usage, costs = {}, {}
    return judgements


def _classifiers(answer: str | None) -> dict:
    text = (answer or "").strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    try:
        parsed = json.loads(fenced.group(1) if fenced else text, parse_constant=_no_constants)
    except ValueError:
        parsed = None
    entries = parsed.get("classifiers") if isinstance(parsed, dict) else None
    if not isinstance(entries, dict):
        excerpt = repr((answer or "")[:1_000])
        raise ScorerFailed(
            f'The classifier answer is not a JSON object with a "classifiers" object: {excerpt}',
            error_type="JudgeAnswerNotJSON",
        )
    return entries


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
