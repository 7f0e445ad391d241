"""The JSON request parser: DRF's strict one (no NaN/Infinity), which also refuses bodies nested
too deeply for Python's parser, and is the one place every string of a JSON body is checked: a NUL
or a lone surrogate (which no column can store) anywhere, key or value, is a 422 located there."""

import io

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from scoring.api.fields import unstorable_string
from scoring.errors import RequestValidationError, error


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read()
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
        # NUL and surrogates reach a parsed string only through a \u escape (raw control bytes are
        # invalid JSON, raw surrogates invalid UTF-8): a body without one needs no walk.
        encoding = str((parser_context or {}).get("encoding") or "utf-8").lower().replace("-", "")
        if (b"\\u" in raw or encoding != "utf8") and (problem := unstorable_string(data)) is not None:
            path, message = problem
            raise RequestValidationError([error(("body", *path), message, "string_unstorable")])
        return data
