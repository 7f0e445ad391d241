"""What every scorer is: built from a stored Weave object value, told which call inputs it
needs, and applied to one call's output."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.conf import settings


def time_limit(class_name: str | None) -> float:
    """Seconds one scoring of this scorer family may take (SCORING_TIME_LIMITS)."""
    limits = settings.SCORING_TIME_LIMITS
    return float(limits.get(class_name or "", limits["default"]))


def read_timeout(configured: float, class_name: str) -> float:
    """The read timeout of a scorer's outbound request: the configured one, but within the
    family's time limit with a margin, so that a peer that never answers ends as a clean timeout
    (retried) before the time limit interrupts the thread (which it cannot do in a blocked read)."""
    return min(float(configured), 0.8 * time_limit(class_name))


class ScorerConfigError(ValueError):
    """The stored scorer object cannot be used (a permanent error)."""


class MissingArgument(ValueError):
    """A parameter of the scorer is not among the call's inputs (a permanent error)."""


class ScorerFailed(Exception):
    """The scorer ran and cannot succeed with this input or configuration (a permanent error,
    e.g. a provider's 400, an unparseable judge answer); `error_type` names the kind."""

    def __init__(self, message: str, *, error_type: str = "ScorerFailed"):
        super().__init__(message)
        self.error_type = error_type


class RetryableError(Exception):
    """A transient failure worth trying again (429, 5xx, timeout, connection error, no free
    provider slot); `retry_after` in seconds when the other side said when. With counts=False the
    wait is no attempt (a blocked provider): the task waits however long the block lasts."""

    def __init__(
        self, message: str, *, error_type: str = "RetryableError", retry_after: float | None = None, counts=True
    ):
        super().__init__(message)
        self.error_type = error_type
        self.retry_after = retry_after
        self.counts = counts


class BudgetExhausted(Exception):
    """The project's or the job's budget has no room for the next provider request."""

    error_type = "budget_exhausted"

    def __init__(self, message: str, *, scope: str):
        super().__init__(message)
        self.scope = scope  # "project" (day or month) or "job"


class SpendMeter:
    """Reserves a provider request's estimated price before it is sent and settles the actual
    price after; the engine's meter (scoring.engine.spend) checks budgets. This one checks nothing."""

    def reserve(self, *, scorer_name: str, llm_model_id: str, prompt_chars: int, max_tokens: int | None) -> Any:
        return None

    def settle(self, hold: Any, *, usage: dict | None = None, cost: dict | None = None) -> None:
        return None


def bounded_text(scorer: "Scorer", name: str, value: str, limit: int | None = None) -> str:
    """The value, if it is within what one scoring may read (SCORING_SCORER_INPUT_MAX_CHARS, or a
    scorer's own tighter bound); else the scoring fails without touching it."""
    limit = min(limit or settings.SCORING_SCORER_INPUT_MAX_CHARS, settings.SCORING_SCORER_INPUT_MAX_CHARS)
    if len(value) > limit:
        raise ScorerFailed(
            f"{scorer.class_name} reads at most {limit:,} characters of {name!r}; it has {len(value):,}",
            error_type="InputTooLarge",
        )
    return value


@dataclass
class Outcome:
    """What a scorer returns: the score, and for the scoring call's summary the token usage
    keyed by model id (`{"openai/gpt-4o-mini": {"prompt_tokens": .., "completion_tokens": ..,
    "total_tokens": .., "requests": 1}}`)."""

    output: Any
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    # Weave's `summary.weave.costs`: model id -> prices and totals (scoring.scorers.prices).
    costs: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoringContext:
    """What a scorer may need beyond its arguments, provided by the task runner."""

    project_id: str  # "entity/project"
    call_id: str  # the scored call
    scoring_call_id: str  # the call that records this scoring run
    task_key: str  # stable across retries of the same task (an idempotency key)
    call: dict = field(default_factory=dict)  # the scored call in Weave's CallSchema shape
    scorer_ref: str = ""  # the scorer object's ref (remote scorers send it), when the runner knows it
    meter: SpendMeter = field(default_factory=SpendMeter)  # judges reserve and settle their spend


# Loads a nested object ref (`weave:///…/object/name:digest`) of the same project: returns its val.
RefResolver = Callable[[str], Any]


class Scorer:
    """Base class: subclasses set `class_name` and `params`, and implement `score` (pure
    scorers) or `run` (scorers that need the context or report usage)."""

    class_name: ClassVar[str]
    # Parameters of `score` besides `output`, filled from the call's inputs by name.
    params: ClassVar[tuple[str, ...]] = ()
    # Scorers that wait on the network (LLM judges, remote scorers) are not batched and hold a
    # lease while they wait.
    slow: ClassVar[bool] = False
    # Scorers that pay for what they ask (LLM judges): their requests are priced and budgeted.
    metered: ClassVar[bool] = False

    def __init__(self, val: dict, resolve: RefResolver | None = None):
        self.validate(val)
        self.val = val
        self.column_map: dict[str, str] = val.get("column_map") or {}

    @classmethod
    def validate(cls, val: dict) -> None:
        """Refuse a stored value this class cannot run, with a ScorerConfigError; checks only
        what needs no nested refs, so that a job is refused at submit rather than in the worker."""
        column_map = val.get("column_map") or {}
        if not isinstance(column_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in column_map.items()
        ):
            raise ScorerConfigError("column_map must map scorer parameter names to input names")

    # The name the object was published under (the ref's name), set by whoever loaded it.
    object_id: str | None = None

    @property
    def name(self) -> str:
        """The scorer's name as feedback types spell it (`wandb.runnable.<name>`): its `name`
        field, else the name it was published under, else its class, as Weave names it."""
        return self.val.get("name") or self.object_id or self.class_name

    def arguments(self, output: Any, inputs: dict) -> dict[str, Any]:
        """Map a call onto `score`'s parameters the Weave way: `output` is the call's output,
        the rest come from its inputs by name, renamed through `column_map`."""
        args = {"output": output}
        for param in self.params:
            key = self.column_map.get(param, param)
            if key not in inputs:
                available = ", ".join(sorted(map(str, inputs))) or "none"
                raise MissingArgument(f"{self.needs(param, key)}; the call's inputs are: {available}")
            args[param] = inputs[key]
        return args

    def needs(self, param: str, key: str) -> str:
        """What a missing argument is called in the error that says it is missing."""
        return f"Scorer {self.name} needs argument {param!r} (input {key!r})"

    def run(self, arguments: dict[str, Any], context: ScoringContext) -> Outcome:
        return Outcome(self.score(**arguments))

    def score(self, **kwargs: Any) -> Any:
        raise NotImplementedError
