"""Template filters of the pages for people."""

from django import template

from scoring.web.display import pretty_json as _pretty_json

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    return _pretty_json(value)
