"""Template filters of the pages for people."""

from django import template

from scoring.selectors.calls_table import op_short_name
from scoring.web.display import pretty_json as _pretty_json

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    return _pretty_json(value)


@register.filter
def call_title(call) -> str:
    """A call's display name, else its op's short name (`answer`, not the op's full ref)."""
    return call.display_name or op_short_name(call.op_name or "")


@register.filter
def op_short(op_name: str) -> str:
    """`answer` for an op ref such as `weave:///e/p/op/answer:*`."""
    return op_short_name(op_name or "")
