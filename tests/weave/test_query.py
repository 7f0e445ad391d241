"""Weave's query language translated to Django Q: each operator, JSON paths into payload, null
handling under $not, and a located QueryError for everything that cannot be translated."""

from datetime import timedelta

import pytest
from django.utils import timezone

from scoring.models import Feedback
from scoring.selectors.feedback import FEEDBACK_FIELDS
from scoring.weave.query import MAX_DEPTH, QueryError, order_by, query_to_q
from tests import factories


def field(name):
    return {"$getField": name}


def lit(value):
    return {"$literal": value}


def feedback(name, payload=None, **fields):
    """A feedback row on call `name` of alice/demo."""
    return Feedback.objects.create(
        project=factories.project(),
        weave_ref=f"weave:///alice/demo/call/{name}",
        feedback_type=fields.pop("feedback_type", "wandb.runnable.Judge"),
        payload=payload if payload is not None else {},
        wb_user_id="VXNlcjox",
        **fields,
    )


def matching(expr) -> set[str]:
    """The call names of the rows an `$expr` selects."""
    condition = query_to_q({"$expr": expr}, FEEDBACK_FIELDS)
    return {ref.rsplit("/", 1)[1] for ref in Feedback.objects.filter(condition).values_list("weave_ref", flat=True)}


def query_error(expr) -> QueryError:
    with pytest.raises(QueryError) as info:
        query_to_q({"$expr": expr}, FEEDBACK_FIELDS)
    return info.value


@pytest.fixture
def scores(db):
    """Rows whose payload.output.score is a number, a numeric string, missing, or null."""
    feedback("high", {"output": {"score": 0.9, "label": "Correct answer", "tags": ["a", "b"]}}, creator="ann")
    feedback("low", {"output": {"score": 0.1, "label": "wrong"}}, creator="bob")
    feedback("mid", {"output": {"score": 0.5}}, feedback_type="wandb.note.1")
    feedback("text", {"output": {"score": "0.95"}})
    feedback("none", {"output": {"score": None}})
    feedback("empty", {})


SCORE = field("payload.output.score")


def test_eq_on_a_column(scores):
    """$eq of a column and a literal selects the rows with that value."""
    assert matching({"$eq": [field("feedback_type"), lit("wandb.note.1")]}) == {"mid"}


def test_eq_with_the_literal_first(scores):
    """The operands of $eq may come in either order."""
    assert matching({"$eq": [lit("ann"), field("creator")]}) == {"high"}


@pytest.mark.parametrize(
    ("op", "expected"),
    [("$gt", {"high"}), ("$gte", {"high", "mid"}), ("$lt", {"low"}), ("$lte", {"low", "mid"})],
)
def test_ordering_comparisons_on_a_payload_number(scores, op, expected):
    """$gt, $gte, $lt and $lte compare the number at a payload path numerically."""
    assert matching({op: [SCORE, lit(0.5)]}) == expected


def test_ordering_comparison_with_the_literal_first_is_mirrored(scores):
    """`0.5 > score` means `score < 0.5`."""
    assert matching({"$gt": [lit(0.5), SCORE]}) == {"low"}


def test_ordering_comparison_only_matches_values_of_the_literals_type(scores):
    """A numeric string in the payload is not a number: $gt 0.5 does not select "0.95"."""
    assert "text" not in matching({"$gt": [SCORE, lit(0.5)]})


def test_ordering_comparison_on_payload_strings(scores):
    """With a string literal, strings at the path are compared as strings."""
    assert matching({"$gte": [field("payload.output.label"), lit("a")]}) == {"low"}


def test_eq_on_a_payload_path_compares_json_type_and_value(scores):
    """$eq on a payload path tells the number 0.9 from the string "0.95"."""
    assert matching({"$eq": [SCORE, lit(0.9)]}) == {"high"}
    assert matching({"$eq": [SCORE, lit("0.95")]}) == {"text"}


def test_integer_path_part_indexes_an_array(scores):
    """`payload.output.tags.1` is the second element of the tags array."""
    assert matching({"$eq": [field("payload.output.tags.1"), lit("b")]}) == {"high"}


def test_eq_null_matches_missing_and_null_values(scores):
    """$eq with null selects rows where the path is missing or holds JSON null."""
    assert matching({"$eq": [SCORE, lit(None)]}) == {"none", "empty"}


def test_eq_null_on_a_nullable_column(scores):
    """$eq with null on a nullable column selects the rows where it is NULL."""
    assert matching({"$eq": [field("creator"), lit(None)]}) == {"mid", "text", "none", "empty"}


def test_contains_is_case_sensitive_by_default(scores):
    """$contains without case_insensitive matches the exact case."""
    assert matching({"$contains": {"input": field("payload.output.label"), "substr": lit("correct")}}) == set()


def test_contains_case_insensitive(scores):
    """$contains with case_insensitive true ignores case."""
    spec = {"input": field("payload.output.label"), "substr": lit("CORRECT"), "case_insensitive": True}
    assert matching({"$contains": spec}) == {"high"}


def test_contains_on_a_column(scores):
    """$contains on a column is a substring match."""
    assert matching({"$contains": {"input": field("feedback_type"), "substr": lit("note")}}) == {"mid"}


def test_contains_on_a_payload_path_is_a_substring_of_its_text(scores):
    """$contains on a JSON path matches inside the value's text (a number's digits too),
    not JSON containment."""
    assert matching({"$contains": {"input": SCORE, "substr": lit("9")}}) == {"high", "text"}


def test_contains_on_the_whole_payload_searches_its_text(scores):
    """$contains on `payload` itself matches anywhere in the document's text."""
    assert matching({"$contains": {"input": field("payload"), "substr": lit("wrong")}}) == {"low"}


def test_contains_escapes_like_wildcards(db):
    """`%` and `_` in the substring are literal characters, not LIKE wildcards."""
    feedback("percent", {"note": "100% sure"})
    feedback("other", {"note": "1000 sure"})
    assert matching({"$contains": {"input": field("payload.note"), "substr": lit("0% s")}}) == {"percent"}


def test_in_on_a_column(scores):
    """$in selects the rows whose column is one of the literals."""
    assert matching({"$in": [field("creator"), [lit("ann"), lit("bob"), lit("zed")]]}) == {"high", "low"}


def test_in_on_a_payload_path(scores):
    """$in on a payload path compares JSON values."""
    assert matching({"$in": [SCORE, [lit(0.1), lit("0.95")]]}) == {"low", "text"}


def test_in_with_null_also_matches_missing_values(scores):
    """A null in the $in list selects rows where the value is missing or null."""
    assert matching({"$in": [SCORE, [lit(0.5), lit(None)]]}) == {"mid", "none", "empty"}


def test_in_an_empty_list_matches_nothing_and_its_negation_everything(scores):
    """$in [] is false for every row, and $not of it true for every row."""
    assert matching({"$in": [field("id"), []]}) == set()
    assert len(matching({"$not": [{"$in": [field("id"), []]}]})) == 6


def test_and_or_nesting(scores):
    """$and and $or nest: (creator is ann or bob) and score < 0.5."""
    expr = {
        "$and": [
            {"$or": [{"$eq": [field("creator"), lit("ann")]}, {"$eq": [field("creator"), lit("bob")]}]},
            {"$lt": [SCORE, lit(0.5)]},
        ]
    }
    assert matching(expr) == {"low"}


def test_not_of_a_comparison_includes_null_columns(scores):
    """$not $eq creator "ann" selects every other row, including those without a creator."""
    assert matching({"$not": [{"$eq": [field("creator"), lit("ann")]}]}) == {"low", "mid", "text", "none", "empty"}


def test_not_of_a_payload_comparison_includes_missing_values(scores):
    """$not $gt on a payload path selects the rows where the path is missing, null or not a number."""
    assert matching({"$not": [{"$gt": [SCORE, lit(0.5)]}]}) == {"low", "mid", "text", "none", "empty"}


def test_not_of_eq_null_selects_present_values(scores):
    """$not $eq null selects rows where the path holds a value."""
    assert matching({"$not": [{"$eq": [SCORE, lit(None)]}]}) == {"high", "low", "mid", "text"}


def test_not_of_and_is_or_of_nots(scores):
    """$not over $and/$or follows De Morgan, null rows included."""
    expr = {"$not": [{"$and": [{"$eq": [field("creator"), lit("ann")]}, {"$gt": [SCORE, lit(0.5)]}]}]}
    assert matching(expr) == {"low", "mid", "text", "none", "empty"}
    expr = {"$not": [{"$or": [{"$eq": [field("creator"), lit("ann")]}, {"$lt": [SCORE, lit(0.5)]}]}]}
    assert matching(expr) == {"mid", "text", "none", "empty"}


def test_double_not_is_the_comparison(scores):
    """$not of $not is the comparison itself."""
    assert matching({"$not": [{"$not": [{"$gt": [SCORE, lit(0.5)]}]}]}) == {"high"}


def test_empty_and_is_true_and_empty_or_is_false(scores):
    """$and [] selects every row and $or [] none, as in MongoDB."""
    assert len(matching({"$and": []})) == 6
    assert matching({"$or": []}) == set()


def test_created_at_compares_with_an_iso_datetime(db):
    """created_at compares with an ISO 8601 literal (a trailing Z is UTC)."""
    old = feedback("old")
    Feedback.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    feedback("new")
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert matching({"$gte": [field("created_at"), lit(since)]}) == {"new"}


def test_id_compares_with_a_uuid_string(scores):
    """id compares with the UUID as a string."""
    row = Feedback.objects.get(weave_ref__endswith="/low")
    assert matching({"$eq": [field("id"), lit(str(row.id))]}) == {"low"}


def test_id_with_a_non_uuid_literal_is_an_error():
    """Comparing id with something that is not a UUID is a located uuid_parsing error."""
    exc = query_error({"$eq": [field("id"), lit("nope")]})
    assert (exc.loc, exc.type) == (("query", "$expr", "$eq", 1, "$literal"), "uuid_parsing")


def test_unsupported_operator_is_named_with_its_location():
    """An operator outside the supported set is an error naming it, located inside the query."""
    exc = query_error({"$and": [{"$eq": [field("creator"), lit("x")]}, {"$regex": [field("creator"), lit("x")]}]})
    assert exc.loc == ("query", "$expr", "$and", 1, "$regex")
    assert exc.type == "unsupported_operator"
    assert "'$regex'" in exc.msg


def test_convert_is_unsupported():
    """$convert is not translated: it is named in the error rather than ignored."""
    exc = query_error({"$gt": [{"$convert": {"input": SCORE, "to": "double"}}, lit(0.5)]})
    assert exc.loc == ("query", "$expr", "$gt", 0, "$convert")
    assert exc.type == "unsupported_operator"


def test_unsupported_field_is_named():
    """A field that is neither a column nor a payload path is an unsupported_field error."""
    exc = query_error({"$eq": [field("inputs.x"), lit(1)]})
    assert exc.loc == ("query", "$expr", "$eq", 0, "$getField")
    assert exc.type == "unsupported_field"
    assert "'inputs.x'" in exc.msg


def test_comparing_two_fields_is_unsupported():
    """A comparison needs one field and one literal."""
    exc = query_error({"$eq": [field("creator"), field("wb_user_id")]})
    assert (exc.loc, exc.type) == (("query", "$expr", "$eq"), "unsupported_operand")


def test_an_operand_is_not_an_operation():
    """A bare $getField at the top is not a condition."""
    exc = query_error(field("creator"))
    assert (exc.loc, exc.type) == (("query", "$expr", "$getField"), "unsupported_operator")


def test_eq_needs_two_operands():
    """$eq with three operands is a value_error at $eq."""
    exc = query_error({"$eq": [field("creator"), lit("a"), lit("b")]})
    assert exc.loc == ("query", "$expr", "$eq")


def test_not_takes_one_operation():
    """$not's argument is a list of exactly one operation."""
    exc = query_error({"$not": {"$eq": [field("creator"), lit("a")]}})
    assert exc.loc == ("query", "$expr", "$not")


def test_ordering_comparison_with_a_boolean_is_an_error():
    """$gt on a payload path compares with numbers or strings only."""
    exc = query_error({"$gt": [SCORE, lit(True)]})
    assert exc.loc == ("query", "$expr", "$gt", 1, "$literal")


def test_text_column_compares_with_strings_only():
    """A number literal against a text column is a string_type error, not a coercion."""
    exc = query_error({"$eq": [field("feedback_type"), lit(5)]})
    assert exc.type == "string_type"


def test_nul_in_a_literal_is_rejected():
    """A NUL character in a literal is a 422, not a database error."""
    exc = query_error({"$eq": [field("creator"), lit("a\x00b")]})
    assert exc.loc == ("query", "$expr", "$eq", 1, "$literal")


def test_nesting_deeper_than_the_limit_is_rejected():
    """Queries nested beyond MAX_DEPTH are refused before any SQL is built."""
    expr = {"$eq": [field("creator"), lit("a")]}
    for _ in range(MAX_DEPTH + 1):
        expr = {"$not": [expr]}
    assert "nested deeper" in query_error(expr).msg


def test_query_needs_expr_and_nothing_else():
    """The query object is exactly {"$expr": ...}."""
    with pytest.raises(QueryError) as info:
        query_to_q({}, FEEDBACK_FIELDS)
    assert (info.value.loc, info.value.type) == (("query", "$expr"), "missing")
    with pytest.raises(QueryError) as info:
        query_to_q({"$expr": {"$and": []}, "$where": "1"}, FEEDBACK_FIELDS)
    assert (info.value.loc, info.value.type) == (("query", "$where"), "extra_forbidden")


def test_no_query_is_no_condition():
    """A null query translates to no condition at all."""
    assert query_to_q(None, FEEDBACK_FIELDS) is None


def test_order_by_a_payload_number(scores):
    """Sorting by a payload path orders numbers numerically; rows without the path come last."""
    ordering = order_by([{"field": "payload.output.score", "direction": "desc"}], FEEDBACK_FIELDS)
    names = [ref.rsplit("/", 1)[1] for ref in Feedback.objects.order_by(*ordering).values_list("weave_ref", flat=True)]
    assert [name for name in names if name in {"high", "mid", "low"}] == ["high", "mid", "low"]
    assert names[-1] == "empty"


def test_order_by_an_unknown_field_is_an_error():
    """Sorting by an unknown field is an unsupported_field error at sort_by.<i>.field."""
    with pytest.raises(QueryError) as info:
        order_by([{"field": "created_at", "direction": "asc"}, {"field": "nope", "direction": "asc"}], FEEDBACK_FIELDS)
    assert info.value.loc == ("sort_by", 1, "field")


@pytest.mark.parametrize("part", ["-1", "01", " 1", "1_0"])
def test_path_parts_that_only_look_like_indexes_are_rejected(part):
    """Path parts the backends would read as different array indexes are refused."""
    exc = query_error({"$eq": [field(f"payload.items.{part}"), lit(1)]})
    assert exc.loc == ("query", "$expr", "$eq", 0, "$getField")


def test_contains_on_id(scores):
    """$contains on id matches part of the UUID's text."""
    row = Feedback.objects.get(weave_ref__endswith="/mid")
    assert matching({"$contains": {"input": field("id"), "substr": lit(str(row.id)[-12:])}}) == {"mid"}


def test_too_many_sort_keys_are_refused():
    """More sort keys than MAX_SORT_KEYS is an error at sort_by."""
    with pytest.raises(QueryError) as info:
        order_by([{"field": "id", "direction": "asc"}] * 33, FEEDBACK_FIELDS)
    assert info.value.loc == ("sort_by",)
