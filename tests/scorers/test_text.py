"""StringMatchScorer and LevenshteinScorer: Weave's semantics, argument mapping, failures."""

import pytest

from scoring.scorers import REGISTRY, scorer_class_for
from scoring.scorers.base import MissingArgument, ScorerFailed
from scoring.scorers.text import LevenshteinScorer, StringMatchScorer
from tests.fakes import scoring_context


def weave_val(class_name: str, **fields) -> dict:
    """A scorer object as the weave client publishes it."""
    return {
        "_type": class_name,
        "_class_name": class_name,
        "_bases": ["Scorer", "Object", "BaseModel"],
        "name": None,
        "description": None,
        "column_map": None,
        "score": f"weave:///alice/demo/op/{class_name}.score:abc",
        **fields,
    }


def run(scorer, output, inputs):
    return scorer.run(scorer.arguments(output, inputs), scoring_context()).output


# Weave: `output.lower() in target.lower()`; the first two rows are Weave's own test cases.
STRING_MATCH_CASES = [
    ("Morgan", "Hello my name is Morgan", True),
    ("Alice", "Hello my name is Bob", False),
    ("MORGAN", "hello my name is morgan", True),
    ("name is", "my NAME IS bob", True),
    ("", "anything", True),
    ("", "", True),
    ("abc", "", False),
    ("  Morgan", "Morgan", False),
    ("Morgan.", "Hello Morgan", False),
    ("straße", "STRASSE", False),  # str.lower, not casefold
    ("ÉCOLE", "une école", True),
]


@pytest.mark.parametrize(("output", "target", "expected"), STRING_MATCH_CASES)
def test_string_match_follows_weave(output, target, expected):
    """StringMatchScorer says whether the lower-cased output occurs in the lower-cased target."""
    result = run(StringMatchScorer(weave_val("StringMatchScorer")), output, {"target": target})

    assert result == {"string_in_input": expected}
    assert expected is (output.lower() in target.lower())


# Weave: `Levenshtein.distance(output, target)`; the first three rows are Weave's own test cases.
LEVENSHTEIN_CASES = [
    ("Hello", "Hallo", 1),
    ("Hello", "Hello", 0),
    ("Hello", "World", 4),
    ("kitten", "sitting", 3),
    ("flaw", "lawn", 2),
    ("", "abc", 3),
    ("abc", "", 3),
    ("", "", 0),
    ("Hello", "hello", 1),  # case matters
    ("ab", "ba", 2),  # a transposition is two edits
    ("café", "cafe", 1),
    ("🙂🙂", "🙂", 1),  # code points, not bytes
]


@pytest.mark.parametrize(("output", "target", "expected"), LEVENSHTEIN_CASES)
def test_levenshtein_follows_weave(output, target, expected):
    """LevenshteinScorer returns the unnormalised edit distance between output and target."""
    result = run(LevenshteinScorer(weave_val("LevenshteinScorer")), output, {"target": target})

    assert result == {"levenshtein_distance": expected}
    assert isinstance(result["levenshtein_distance"], int)


@pytest.mark.parametrize(
    ("cls", "expected"),
    [(StringMatchScorer, {"string_in_input": True}), (LevenshteinScorer, {"levenshtein_distance": 0})],
)
def test_column_map_renames_target(cls, expected):
    """column_map {"target": "expected"} takes the target from the call's `expected` input."""
    scorer = cls(weave_val(cls.class_name, column_map={"target": "expected"}))

    arguments = scorer.arguments("Morgan", {"expected": "Morgan", "target": "ignored"})

    assert arguments == {"output": "Morgan", "target": "Morgan"}
    assert scorer.run(arguments, scoring_context()).output == expected


@pytest.mark.parametrize("cls", [StringMatchScorer, LevenshteinScorer])
def test_missing_target_names_parameter_and_inputs(cls):
    """Without the target input, the error names the parameter and the inputs the call has."""
    scorer = cls(weave_val(cls.class_name, column_map={"target": "expected"}))

    with pytest.raises(MissingArgument) as excinfo:
        scorer.arguments("Morgan", {"question": "q", "answer": "a"})

    message = str(excinfo.value)
    assert "'target'" in message and "'expected'" in message
    assert "answer, question" in message


@pytest.mark.parametrize("cls", [StringMatchScorer, LevenshteinScorer])
@pytest.mark.parametrize(("output", "target", "bad"), [({"a": 1}, "x", "output"), ("x", None, "target")])
def test_non_text_argument_fails(cls, output, target, bad):
    """A non-string output or target fails the scoring with a message naming the argument."""
    scorer = cls(weave_val(cls.class_name))

    with pytest.raises(ScorerFailed) as excinfo:
        run(scorer, output, {"target": target})

    assert excinfo.value.error_type == "ArgumentNotText"
    assert repr(bad) in str(excinfo.value)


def test_registry_knows_every_supported_class():
    """Objects are recognised by their Weave `_class_name`."""
    assert {"StringMatchScorer", "LevenshteinScorer", "LLMAsAJudgeScorer", "RemoteScorer"} <= set(REGISTRY)
    assert scorer_class_for(weave_val("LevenshteinScorer")) is LevenshteinScorer
