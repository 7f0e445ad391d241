"""The JSON request parser: DRF's strict one (no NaN/Infinity), which also refuses bodies nested
too deeply for Python's parser, as a 422 like any other malformed JSON."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
