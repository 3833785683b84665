"""Table pages bound ``?per_page=``: one request rendered a whole 1,000-host cluster or the sync history."""

from __future__ import annotations

import pytest

from inventory.tables import MAX_PER_PAGE
from tests import factories
from tests.inventory.test_views import viewer  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("asked", "rows"), [("100000", MAX_PER_PAGE), ("0", 1), ("-5", 1), ("7", 7), ("x", 25)])
def test_per_page_stays_between_one_and_the_maximum(viewer, asked, rows):  # noqa: F811
    vcenter = factories.VCenterFactory()
    factories.SyncRunFactory.create_batch(MAX_PER_PAGE + 20, vcenter=vcenter)
    response = viewer.get("/syncs/", {"per_page": asked})
    assert response.status_code == 200
    assert len(response.context["table"].page.object_list) == rows


def test_a_page_past_the_end_shows_the_last(viewer):  # noqa: F811
    factories.SyncRunFactory.create_batch(30, vcenter=factories.VCenterFactory())
    response = viewer.get("/syncs/", {"per_page": "10", "page": "99"})
    assert response.context["table"].page.number == 3


@pytest.mark.parametrize("sort", ["status", "-status", "trigger", "round_trips"])
def test_pages_of_a_sort_on_a_shared_value_show_every_row_once(viewer, sort):  # noqa: F811
    """Every sync run below shares its state and vCenter: without the primary key at the end of the order, pages
    of one row could repeat a run and never show another (as the API's lists did, trial A H3)."""
    vcenter = factories.VCenterFactory()
    runs = factories.SyncRunFactory.create_batch(12, vcenter=vcenter)
    seen = []
    for page in range(1, len(runs) + 1):
        response = viewer.get("/syncs/", {"per_page": "1", "page": str(page), "sort": sort})
        seen += [row.record.pk for row in response.context["table"].page.object_list]
    assert sorted(seen) == sorted(r.pk for r in runs)
