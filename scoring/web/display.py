"""How stored values are shown on the pages: JSON pretty-printed within a depth and size budget."""

import json

MAX_DEPTH = 40
MAX_CHARS = 20_000


def pretty_json(value, *, max_depth: int = MAX_DEPTH, max_chars: int = MAX_CHARS) -> str:
    """Indented JSON of a stored value, nesting deeper than `max_depth` shown as `…` (json.dumps
    would recurse without bound), and cut after `max_chars` with a note of the full size."""
    # A string (most outputs) reads best as itself, not as a JSON literal full of escapes.
    text = (
        value
        if isinstance(value, str)
        else json.dumps(_clip(value, max_depth), indent=2, ensure_ascii=False, default=str)
    )
    if len(text) > max_chars:
        return f"{text[:max_chars]}\n… ({len(text) - max_chars:,} more characters)"
    return text


def _clip(value, depth: int):
    if isinstance(value, dict):
        return "…" if depth <= 0 else {str(k): _clip(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list):
        return "…" if depth <= 0 else [_clip(v, depth - 1) for v in value]
    return value
