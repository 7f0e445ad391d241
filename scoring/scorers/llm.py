"""Weave's LLMAsAJudgeScorer, run on the server against a configured OpenAI-compatible provider.

Semantics follow Weave's `LLMAsAJudgeScorer.score`: `scoring_prompt.format(output=output,
**kwargs)` (Python str.format, `{{` and `}}` are literal braces) becomes one user message, sent
after the model's `default_params.messages_template` messages (as Weave's LLMStructuredCompletionModel
prepares them: template first, then the input), with the model's sampling parameters. When the
model's `response_format` asks for JSON (`json_object`/`json`, `json_schema`) the answer is parsed
and is the score; with `text` (or none) the answer string is the score.

The placeholders of the prompt are the scorer's parameters: each is taken from the call's inputs
by name, renamed through `column_map`. `output` is the call's output. A prompt is a tenant's
template run by the worker, so a placeholder's format spec must be literal with a width and
precision of at most MAX_FORMAT_WIDTH (`{output:>200000000}` would allocate 200 MB), and the
rendered prompt is capped at SCORING_JUDGE_PROMPT_MAX_CHARS.
"""

import json
import re
import string
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from scoring.scorers import prices, providers
from scoring.scorers.base import (
    Outcome,
    RefResolver,
    Scorer,
    ScorerConfigError,
    ScorerFailed,
    ScoringContext,
)

ANSWER_EXCERPT = 1_000
SAMPLING_PARAMS = ("temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty", "seed")
# Media scoring needs the call's media and a multimodal request; not supported here.
MEDIA_FLAGS = (
    "enable_image_input_scoring",
    "enable_audio_input_scoring",
    "enable_video_input_scoring",
    "enable_audio_scoring",
    "include_call_audio_output",
)


# A format spec's width and precision are what it allocates: `{output:>200000000}` is 200 MB.
MAX_FORMAT_WIDTH = 1_000
FORMAT_SPEC = re.compile(
    r"(?:.?[<>=^])?[+\- ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?[bcdeEfFgGnosxX%]?", re.S
)


def _bounded_spec(spec: str) -> bool:
    """Whether a format spec is literal (no nested placeholder) with a small width and precision."""
    match = FORMAT_SPEC.fullmatch(spec)
    if match is None:
        return False
    return all(int(match.group(g) or 0) <= MAX_FORMAT_WIDTH for g in ("width", "precision"))


def prompt_placeholders(template: str) -> tuple[str, ...]:
    """The names a str.format template needs, in order of first use (`{a.b[0]}` needs `a`)."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ScorerConfigError(f"scoring_prompt is not a valid format string: {exc}") from None
    for _literal, field_name, format_spec, _conversion in parsed:
        if field_name is None:
            continue
        root = re.match(r"[^.\[]*", field_name).group()
        if root == "" or root.isdigit():
            raise ScorerConfigError(
                f"scoring_prompt has a positional placeholder {{{field_name}}}; name it, e.g. {{output}}, "
                "or write {{ and }} for literal braces"
            )
        # Attribute access on the values is str.format's, but private attributes have no business
        # in a prompt (and are the usual way format strings reach interpreter internals).
        if re.search(r"\.\s*_", re.sub(r"\[[^\]]*\]", "", field_name)):
            raise ScorerConfigError(f"scoring_prompt placeholder {{{field_name}}} uses a private attribute")
        if format_spec and not _bounded_spec(format_spec):
            raise ScorerConfigError(
                f"scoring_prompt placeholder {{{field_name}:{format_spec}}} has a format spec that is nested or "
                f"wider than {MAX_FORMAT_WIDTH}; use a plain placeholder such as {{{field_name}}}"
            )
        names.append(root)
    return tuple(dict.fromkeys(names))


def render_prompt(template: str, values: dict[str, Any], limit: int) -> str:
    """str.format for a template of plain placeholders, refusing to build more than `limit`
    characters: the size is known piece by piece, before anything is joined."""
    formatter = string.Formatter()
    pieces, size = [], 0
    for literal, field_name, spec, conversion in formatter.parse(template):
        pieces.append(literal)
        size += len(literal)
        if field_name is not None:
            value, _ = formatter.get_field(field_name, (), values)
            text = formatter.format_field(formatter.convert_field(value, conversion), spec or "")
            pieces.append(text)
            size += len(text)
        if size > limit:
            raise ScorerFailed(
                f"The scoring prompt rendered with this call's values is over {limit:,} characters "
                "(SCORING_JUDGE_PROMPT_MAX_CHARS)",
                error_type="PromptTooLarge",
            )
    return "".join(pieces)


@dataclass(frozen=True)
class JudgeModel:
    """What the judge asks: which model, which messages before the prompt, which parameters."""

    llm_model_id: str
    messages_template: tuple[dict, ...]
    params: dict
    wants_json: bool


def _response_format(params: dict) -> tuple[dict | None, bool]:
    """The OpenAI `response_format` parameter for a Weave response_format, and whether the
    answer is JSON."""
    value = params.get("response_format")
    if isinstance(value, dict):
        kind = value.get("type")
        if kind not in ("text", "json_object", "json_schema"):
            raise ScorerConfigError(f"Unsupported response_format type {kind!r}")
        return value, kind != "text"
    if value is None or value == "text":
        return None, False
    if value in ("json", "json_object"):
        return {"type": "json_object"}, True
    if value in ("json_schema", "jsonschema"):
        schema = params.get("response_format_schema") or params.get("json_schema")
        if not isinstance(schema, dict):
            raise ScorerConfigError("response_format json_schema needs a response_format_schema object")
        if "schema" not in schema:
            schema = {"name": "judgement", "schema": schema}
        return {"type": "json_schema", "json_schema": schema}, True
    raise ScorerConfigError(f"Unsupported response_format {value!r}; use text, json_object or json_schema")


def _template_message(message: Any) -> dict:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise ScorerConfigError("Each messages_template entry must be an object with a role")
    return {k: message[k] for k in ("role", "content", "name") if message.get(k) is not None}


def judge_model(val: Any, resolve: RefResolver | None) -> JudgeModel:
    """Read an LLMStructuredCompletionModel value (its default_params may be a nested ref)."""
    if not isinstance(val, dict):
        raise ScorerConfigError("The judge's model must be an LLMStructuredCompletionModel object")
    llm_model_id = val.get("llm_model_id")
    if not isinstance(llm_model_id, str) or not llm_model_id.strip():
        raise ScorerConfigError("The judge's model has no llm_model_id")
    if llm_model_id.startswith("weave:///"):
        # A ref to a user-published provider model would let a user choose the base URL (and
        # so where our API keys are sent); providers are configured on the server only.
        raise ScorerConfigError(
            "llm_model_id refs to custom provider models are not supported; use '<provider>/<model>' "
            "with a provider configured on the server"
        )
    params = _resolved(val.get("default_params") or {}, resolve, "default_params")
    if not isinstance(params, dict):
        raise ScorerConfigError("default_params must be an object")
    if params.get("prompt"):
        raise ScorerConfigError("default_params.prompt refs are not supported; use messages_template")
    template = params.get("messages_template") or []
    if not isinstance(template, list):
        raise ScorerConfigError("messages_template must be a list of messages")
    request = {k: params[k] for k in SAMPLING_PARAMS if params.get(k) is not None}
    if params.get("stop"):  # Weave sends `stop` only when it is a non-empty list
        request["stop"] = params["stop"]
    response_format, wants_json = _response_format(params)
    if response_format is not None:
        request["response_format"] = response_format
    return JudgeModel(
        llm_model_id=llm_model_id.strip(),
        messages_template=tuple(_template_message(m) for m in template),
        params=request,
        wants_json=wants_json,
    )


def _resolved(value: Any, resolve: RefResolver | None, what: str) -> Any:
    if isinstance(value, str) and value.startswith("weave:///"):
        if resolve is None:
            raise ScorerConfigError(f"{what} is a ref, and refs cannot be resolved here")
        return resolve(value)
    return value


def _excerpt(text: str | None) -> str:
    text = "" if text is None else text
    if len(text) <= ANSWER_EXCERPT:
        return repr(text)
    return f"{text[:ANSWER_EXCERPT]!r}… ({len(text)} characters in all)"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class LLMAsAJudgeScorer(Scorer):
    """A judge model's answer to the scoring prompt, formatted with the call's output and inputs."""

    class_name = "LLMAsAJudgeScorer"
    slow = True
    metered = True

    def __init__(self, val: dict, resolve: RefResolver | None = None):
        super().__init__(val, resolve)
        self.scoring_prompt = val["scoring_prompt"]
        # Dynamic: the prompt's placeholders other than `output`.
        self.params = tuple(p for p in prompt_placeholders(self.scoring_prompt) if p != "output")
        self.model = judge_model(_resolved(val.get("model"), resolve, "model"), resolve)

    @classmethod
    def validate(cls, val: dict) -> None:
        super().validate(val)
        prompt = val.get("scoring_prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ScorerConfigError("LLMAsAJudgeScorer needs a scoring_prompt (prompt refs are not supported)")
        limit = settings.SCORING_JUDGE_PROMPT_MAX_CHARS
        if len(prompt) > limit:
            raise ScorerConfigError(f"scoring_prompt is over {limit:,} characters (SCORING_JUDGE_PROMPT_MAX_CHARS)")
        for flag in MEDIA_FLAGS:
            if val.get(flag):
                raise ScorerConfigError(f"{flag} is not supported by this server: judges see text only")
        prompt_placeholders(prompt)

    def needs(self, param: str, key: str) -> str:
        return f"The scoring prompt of {self.name} needs {{{param}}} (input {key!r})"

    def messages(self, arguments: dict[str, Any]) -> list[dict]:
        """The messages sent to the judge for these arguments."""
        values = dict(arguments)
        output = values.pop("output", None)
        try:
            prompt = render_prompt(
                self.scoring_prompt, {**values, "output": output}, settings.SCORING_JUDGE_PROMPT_MAX_CHARS
            )
        except (KeyError, IndexError, AttributeError, ValueError, TypeError) as exc:
            raise ScorerFailed(
                f"The scoring prompt cannot be formatted with this call's values: {type(exc).__name__}: {exc}",
                error_type="PromptFormatError",
            ) from None
        return [*self.model.messages_template, {"role": "user", "content": prompt}]

    def run(self, arguments: dict[str, Any], context: ScoringContext) -> Outcome:
        messages = self.messages(arguments)
        model_id = self.model.llm_model_id
        # Reserved before the request and settled after it, whatever happens to it: spend is
        # what the budgets hold, so a request that was never answered costs nothing.
        hold = context.meter.reserve(
            scorer_name=self.name,
            llm_model_id=model_id,
            prompt_chars=sum(len(str(m.get("content") or "")) for m in messages),
            max_tokens=self.model.params.get("max_tokens"),
        )
        completion, cost = None, None
        try:
            completion = providers.chat_completion(llm_model_id=model_id, messages=messages, params=self.model.params)
            provider, model = providers.split_model_id(model_id)
            cost = prices.price_or_none(
                provider, model, completion.usage["prompt_tokens"], completion.usage["completion_tokens"]
            )
        finally:
            context.meter.settle(hold, usage=completion.usage if completion else None, cost=cost)
        usage = {model_id: {**completion.usage, "requests": 1}}
        return Outcome(self._score(completion.content), usage=usage, costs={model_id: cost} if cost else {})

    def _score(self, answer: str | None) -> Any:
        if not self.model.wants_json:
            return answer or ""
        text = (answer or "").strip()
        # Some OpenAI-compatible servers wrap JSON-mode answers in a Markdown fence.
        fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
        try:
            # NaN and Infinity are not JSON, and could not be stored as a score.
            return json.loads(fenced.group(1) if fenced else text, parse_constant=_no_constants)
        except ValueError:
            raise ScorerFailed(
                f"The judge was asked for JSON but its answer does not parse as JSON: {_excerpt(answer)}",
                error_type="JudgeAnswerNotJSON",
            ) from None
