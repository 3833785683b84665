"""Placement pages read with a screen reader: the help of each request field is on the page, and it is the
description its control points at (aria-describedby)."""

from __future__ import annotations

import re

import pytest

from tests.inventory.test_accessibility import DESCRIBEDBY, dangling_descriptions
from tests.placement.test_views_pages import demo, planner  # noqa: F401

pytestmark = pytest.mark.django_db


def test_every_description_a_control_points_at_is_on_the_placement_pages(planner):  # noqa: F811
    for url in ("/placement/", "/reservations/", "/whatif/"):
        response = planner.get(url)
        assert response.status_code == 200, url
        assert dangling_descriptions(response.content.decode()) == [], url


def test_the_consumption_help_explains_each_choice_and_describes_its_select(planner):  # noqa: F811
    html = planner.get("/placement/").content.decode()
    select = re.search(r'<select[^>]*name="consumption"[^>]*>', html).group(0)
    (help_id,) = [ref for ref in DESCRIBEDBY.search(select).group(1).split() if ref.endswith("_helptext")]
    help_text = re.search(rf'<[^>]+id="{help_id}"[^>]*>(.*?)</', html, re.S).group(1)
    assert "DirectPath I/O: whole GPUs by PCI address" in help_text
