"""The API's JSON parser: DRF's, but a body nested deeper than ``MAX_JSON_DEPTH`` is a 400, not a 500, and so is
a key given twice in one object.

Python's decoder recurses once per array or object level, so ~1,000 levels (2 KB of ``[``) raise
RecursionError: a 500 and a traceback in the log, even for an anonymous POST /api/token/. No request of this
API nests beyond a handful of levels, so the depth is checked before the decoder runs.

Python's decoder keeps the last of repeated keys: ``{"gpus_per_vm": 1, "gpus_per_vm": 16}`` planned 16 GPUs. A
repeated key of the body itself is a 400 naming the field (``{"gpus_per_vm": ["given 2 times ..."]}``); one of a
nested object a parse error naming the key.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError
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


def repeated_key_message(count: int) -> str:
    return f"given {count} times in the JSON object: send each field once"


class _KeyTracker:
    """An ``object_pairs_hook`` that builds each object as ``json`` does and remembers those that repeat a key."""

    def __init__(self) -> None:
        self.repeated: list[tuple[dict, dict[str, int]]] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict:
        obj = dict(pairs)
        if len(obj) < len(pairs):
            counts = Counter(key for key, _ in pairs)
            self.repeated.append((obj, {key: n for key, n in counts.items() if n > 1}))
        return obj

    def check(self, document: Any) -> None:
        """ValidationError naming the body's repeated keys; ParseError for a nested object's."""
        for obj, counts in self.repeated:
            if obj is document:
                raise ValidationError({key: [repeated_key_message(n)] for key, n in counts.items()})
        if self.repeated:
            key, count = next(iter(self.repeated[0][1].items()))
            raise ParseError(f"JSON parse error - key {key!r} given {count} times in one object: send each key once")


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
        keys = _KeyTracker()
        try:
            document = json.loads(text, parse_constant=parse_constant, object_pairs_hook=keys)
        except RecursionError:  # only if the limit is ever raised past what the decoder can take
            raise ParseError(too_deep_message()) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        keys.check(document)
        return document
