"""Weave's built-in format scorers, with the same semantics as Weave's own `score` ops."""

import json
import xml.etree.ElementTree as ET  # expat ≥ 2.4 bounds entity expansion; no external entities
from typing import Any

from scoring.scorers.base import Scorer, bounded_text


class ValidJSONScorer(Scorer):
    """`{"json_valid": bool}`: does the output parse as JSON?"""

    class_name = "ValidJSONScorer"

    def score(self, *, output: Any, **kwargs: Any) -> dict:
        if isinstance(output, str | bytes):
            bounded_text(self, "output", output)
        try:
            json.loads(output)
        except json.JSONDecodeError:
            return {"json_valid": False}
        return {"json_valid": True}


class ValidXMLScorer(Scorer):
    """`{"xml_valid": bool}`: does the output (or `output["output"]`) parse as XML?"""

    class_name = "ValidXMLScorer"

    def score(self, *, output: Any, **kwargs: Any) -> dict:
        xml_string = output.get("output", "") if isinstance(output, dict) else output
        if isinstance(xml_string, str | bytes):
            bounded_text(self, "output", xml_string)
        try:
            ET.fromstring(xml_string)
        except ET.ParseError:
            return {"xml_valid": False}
        return {"xml_valid": True}
