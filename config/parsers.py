"""The API's JSON parser: DRF's, but a body nested deeper than ``MAX_JSON_DEPTH`` is a 400, not a 500.

Python's decoder recurses once per array or object level, so ~1,000 levels (2 KB of ``[``) raise
RecursionError: a 500 and a traceback in the log, even for an anonymous POST /api/token/. No request of this
API nests beyond a handful of levels, so the depth is checked before the decoder runs.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

MAX_JSON_DEPTH = 64

# A JSON string (escapes included), or one bracket: brackets inside strings do not nest.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def too_deep_message() -> str:
    return f"JSON nested deeper than {MAX_JSON_DEPTH} levels of arrays and objects"


def check_json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> None:
    """ParseError when ``text`` opens more than ``limit`` arrays/objects inside one another."""
    if text.count("[") + text.count("{") <= limit:
        return
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        found = match.group()
        if found in ("[", "{"):
            depth += 1
            if depth > limit:
                raise ParseError(too_deep_message())
        elif found in ("]", "}"):
            depth -= 1


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser with a nesting limit (``MAX_JSON_DEPTH``), checked before decoding."""

    def parse(self, stream, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
        except ValueError as exc:  # UnicodeDecodeError, as DRF words it
            raise ParseError(f"JSON parse error - {exc}") from None
        check_json_depth(text)
        parse_constant = json.strict_constant if self.strict else None
        try:
            return json.loads(text, parse_constant=parse_constant)
        except RecursionError:  # only if the limit is ever raised past what the decoder can take
            raise ParseError(too_deep_message()) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
