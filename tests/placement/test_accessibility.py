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


def test_every_table_on_the_placement_pages_says_what_it_lists(planner):  # noqa: F811
    from inventory.models import Host
    from placement import services
    from tests.inventory.test_accessibility import unnamed_tables

    (reservation,) = services.reserve(
        request=services.build_request(gpus_per_vm=2, consumption="passthrough"), vm_name="llm-a11y"
    )
    a100 = Host.objects.get(name="esx-a100-01.lab.local")
    hx = {"HTTP_HX_REQUEST": "true"}
    answers = [
        planner.get("/placement/?gpus_per_vm=2"),
        planner.post("/placement/", {"gpus_per_vm": "1", "consumption": "passthrough", "vms": "2"}, **hx),
        planner.post(
            "/placement/sizing/",
            {
                "params_b": "8",
                "precision": "2",
                "layers": "32",
                "kv_heads": "8",
                "head_dim": "128",
                "context": "8192",
                "seqs": "1",
                "kv_precision": "2",
                "overhead": "0.1",
            },
            **hx,
        ),
        planner.get("/reservations/"),
        planner.get(f"/reservations/{reservation.pk}/"),
        planner.get(f"/inventory/hosts/{a100.pk}/evacuation/"),
    ]
    seen = 0
    for response in answers:
        assert response.status_code == 200, response.request["PATH_INFO"]
        html = response.content.decode()
        seen += html.count("<table")
        assert unnamed_tables(html) == [], response.request["PATH_INFO"]
    assert seen >= 8
