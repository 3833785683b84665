"""Deeply nested JSON bodies are a 400 naming the nesting limit, never a RecursionError 500."""

from __future__ import annotations

import json
import logging
from io import BytesIO

import pytest
from django.test import Client
from rest_framework.exceptions import ParseError

from config.parsers import MAX_JSON_DEPTH, JSONParser

pytestmark = pytest.mark.django_db


def _nested(depth: int) -> str:
    return '{"gpus_per_vm": ' + "[" * depth + "]" * depth + "}"


def _assert_depth_refused(response, caplog) -> None:
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    detail = json.loads(response.content)["detail"]
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in detail, detail
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records


@pytest.mark.reliability("api input", "deeply nested JSON")
@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deep_json_to_the_anonymous_token_endpoint_is_400(depth, caplog):
    response = Client().post("/api/token/", _nested(depth), content_type="application/json")
    _assert_depth_refused(response, caplog)


@pytest.mark.reliability("api input", "deeply nested JSON")
@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deep_json_to_plans_is_400(api_as, depth, caplog):
    response = api_as("planner").generic("POST", "/api/plans/", _nested(depth), content_type="application/json")
    _assert_depth_refused(response, caplog)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, 500])  # plus the outer object: one level over, and more
def test_nesting_over_the_limit_is_refused_too(api_as, depth, caplog):
    response = api_as("planner").generic("POST", "/api/plans/", _nested(depth), content_type="application/json")
    _assert_depth_refused(response, caplog)


def test_json_at_the_limit_still_parses():
    depth = MAX_JSON_DEPTH - 1  # the outer object is one level
    inner = JSONParser().parse(BytesIO(_nested(depth).encode()))["gpus_per_vm"]
    for _ in range(depth - 1):
        inner = inner[0]
    assert inner == []


def test_brackets_inside_strings_do_not_nest():
    """A value's text may hold any brackets and escaped quotes; only real arrays and objects nest."""
    text = '\\"' + "[{" * 200 + "\\\\"
    body = json.dumps({"note": text, "list": [[1]]})
    assert JSONParser().parse(BytesIO(body.encode())) == {"note": text, "list": [[1]]}


def test_invalid_json_is_still_drfs_parse_error():
    with pytest.raises(ParseError, match="JSON parse error"):
        JSONParser().parse(BytesIO(b'{"a": [1,'))
    with pytest.raises(ParseError, match="JSON parse error"):
        JSONParser().parse(BytesIO(b'{"a": NaN}'))
