"""Reading Weave Monitor values: query wrappers, op names and deterministic sampling."""

import pytest

from scoring.weave.monitors import MonitorInvalid, monitor_spec, sampled_in, unwrap_query


def test_unwrap_query_turns_the_clients_objects_into_operators():
    """The client's `_type`-wrapped operators with `get_field_`-style names become `$getField`."""
    stored = {
        "_type": "Query",
        "_class_name": "Query",
        "_bases": ["BaseModel"],
        "expr_": {
            "_type": "ContainsOperation",
            "contains_": {"input": {"get_field_": "inputs.q"}, "substr": {"literal_": "x"}, "case_insensitive": True},
        },
    }
    contains = {"input": {"$getField": "inputs.q"}, "substr": {"$literal": "x"}, "case_insensitive": True}
    assert unwrap_query(stored) == {"$expr": {"$contains": contains}}


def test_op_names_match_any_digest_or_exactly():
    """`:*` matches every digest of the op; other names match exactly; none named matches all."""
    spec = monitor_spec({"op_names": ["weave:///e/p/op/a:*", "weave.genai.turn_ended"], "scorers": []})
    assert spec.op_matches("weave:///e/p/op/a:123")
    assert spec.op_matches("weave.genai.turn_ended")
    assert not spec.op_matches("weave:///e/p/op/ab:123")
    assert monitor_spec({"scorers": []}).op_matches("anything")


def test_sampling_is_deterministic_and_near_its_rate():
    """The same (monitor, call) always decides the same way, and about `rate` of calls are kept."""
    kept = [sampled_in("m", f"call-{i}", 0.25) for i in range(4000)]
    assert kept == [sampled_in("m", f"call-{i}", 0.25) for i in range(4000)]
    assert 800 <= sum(kept) <= 1200


@pytest.mark.parametrize(
    "val",
    [{"scorers": "x"}, {"scorers": [], "sampling_rate": 2}, {"scorers": [], "scorer_debounce_config": {"x": 1}}],
)
def test_invalid_monitors_are_refused_with_a_reason(val):
    """A value that does not fit Weave's Monitor is MonitorInvalid."""
    with pytest.raises(MonitorInvalid):
        monitor_spec(val)
