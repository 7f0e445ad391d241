"""The scorers the worker can run, keyed by the Weave class name in an object's `_class_name`.

No user code runs on the server: a scorer object is configuration for one of these classes.
"""

from scoring.scorers.base import Scorer, ScorerConfigError
from scoring.scorers.builtin import ValidJSONScorer, ValidXMLScorer
from scoring.scorers.llm import LLMAsAJudgeScorer
from scoring.scorers.remote import RemoteScorer
from scoring.scorers.text import LevenshteinScorer, StringMatchScorer

REGISTRY: dict[str, type[Scorer]] = {
    cls.class_name: cls
    for cls in (
        ValidJSONScorer,
        ValidXMLScorer,
        StringMatchScorer,
        LevenshteinScorer,
        LLMAsAJudgeScorer,
        RemoteScorer,
    )
}


def supported_classes() -> list[str]:
    return sorted(REGISTRY)


def metered_classes() -> list[str]:
    """The scorer classes whose requests are priced and budgeted."""
    return sorted(name for name, cls in REGISTRY.items() if cls.metered)


def scorer_class_for(val) -> type[Scorer] | None:
    """The scorer class for a stored object value, or None if it is not a supported scorer."""
    if not isinstance(val, dict):
        return None
    return REGISTRY.get(val.get("_class_name"))


def scorer_validate(val) -> None:
    """Refuse (ScorerConfigError) a stored scorer value its class cannot run; see Scorer.validate."""
    cls = scorer_class_for(val)
    if cls is None:
        raise ScorerConfigError("not a supported scorer")
    cls.validate(val)


__all__ = [
    "REGISTRY",
    "Scorer",
    "ScorerConfigError",
    "metered_classes",
    "scorer_class_for",
    "scorer_validate",
    "supported_classes",
]
