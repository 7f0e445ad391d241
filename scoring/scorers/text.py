"""Weave's string scorers, with the semantics of Weave's own `score` ops (weave/scorers/string_scorer.py):

- StringMatchScorer: `output.lower() in target.lower()` -> {"string_in_input": bool}
  (case-insensitive substring by `str.lower`, so an empty output is in every target).
- LevenshteinScorer: the edit distance (insertions, deletions, substitutions, each costing 1)
  between output and target, unnormalised -> {"levenshtein_distance": int}. Weave uses the
  `Levenshtein` package; rapidfuzz computes the same distance.

Weave raises when either argument is not a string; here that is a ScorerFailed naming the
argument, so the task fails with a readable message rather than an AttributeError.
"""

from typing import Any

from rapidfuzz.distance import Levenshtein

from scoring.scorers.base import Scorer, ScorerFailed, bounded_text

# The edit distance costs length x length / 64 machine words: two 100,000-character texts are
# about 0.2 s of one core, so that is the bound whatever SCORING_SCORER_INPUT_MAX_CHARS says.
LEVENSHTEIN_MAX_CHARS = 100_000


def _text(scorer: Scorer, name: str, value: Any, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise ScorerFailed(
            f"{scorer.class_name} compares strings, but {name!r} is {type(value).__name__}: {str(value)[:200]}",
            error_type="ArgumentNotText",
        )
    return bounded_text(scorer, name, value, limit)


class StringMatchScorer(Scorer):
    """`{"string_in_input": bool}`: is the output a case-insensitive substring of the target?"""

    class_name = "StringMatchScorer"
    params = ("target",)

    def score(self, *, output: Any, target: Any, **kwargs: Any) -> dict:
        output, target = _text(self, "output", output), _text(self, "target", target)
        return {"string_in_input": output.lower() in target.lower()}


class LevenshteinScorer(Scorer):
    """`{"levenshtein_distance": int}`: the edit distance between output and target."""

    class_name = "LevenshteinScorer"
    params = ("target",)

    def score(self, *, output: Any, target: Any, **kwargs: Any) -> dict:
        output = _text(self, "output", output, LEVENSHTEIN_MAX_CHARS)
        target = _text(self, "target", target, LEVENSHTEIN_MAX_CHARS)
        return {"levenshtein_distance": Levenshtein.distance(output, target)}
