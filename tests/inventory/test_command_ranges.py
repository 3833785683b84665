"""Numbers the inventory commands take are range-checked and refused in one line naming the option; nothing is
adjusted silently and nothing is stored (trial B, finding 3: "any other numeric option ... not range-checked")."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from inventory import services
from inventory.models import LinkOverride
from tests import factories
from tests.vcsim import LABS

pytestmark = pytest.mark.django_db

NVL = "esx-h100nvl-01.lab.local"
PAIR = "0000:18:00.0,0000:19:00.0"


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as info:
        call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    return str(info.value)


@pytest.fixture
def demo() -> None:
    services.import_inventory(document=json.loads((LABS / "demo.json").read_text()), vcenter_name="demo")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nvlinks", "-1"], "--nvlinks: must be between 0 and 18, not -1"),
        (["--nvlinks", "99999"], "--nvlinks: must be between 0 and 18, not 99999"),
        (["--gbps", "-1"], "--gbps: must be a number of GB/s, 0 or more (0: from the bandwidth model), not -1"),
        (["--gbps", "nan"], "--gbps: must be a number of GB/s, 0 or more (0: from the bandwidth model), not nan"),
        (["--gbps", "inf"], "--gbps: must be a number of GB/s, 0 or more (0: from the bandwidth model), not inf"),
    ],
)
def test_override_refuses_a_link_count_or_bandwidth_out_of_range(demo, args, message):
    assert refused("topology", "override", "--host", NVL, "--gpus", PAIR, "--kind", "NVLINK", *args) == message
    assert not LinkOverride.objects.exists()


def test_override_takes_the_bounds(demo):
    out = io.StringIO()
    call_command("topology", "override", "--host", NVL, "--gpus", PAIR, "--kind", "NVLINK", "--nvlinks", "18",
                 "--gbps", "0", stdout=out)  # fmt: skip
    assert "is now NVLINK" in out.getvalue()
    assert LinkOverride.objects.get().link_count == 18


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-wait", "0"], "--max-wait: must be between 1 and 3600 seconds, not 0"),
        (["--max-wait", "99999999"], "--max-wait: must be between 1 and 3600 seconds, not 99999999"),
        (["--debounce", "-1"], "--debounce: must be between 0 and 3600 seconds, not -1"),
        (["--debounce", "nan"], "--debounce: must be between 0 and 3600 seconds, not nan"),
        (["--retry-initial", "-1"], "--retry-initial: must be between 0 and 3600 seconds, not -1"),
        (["--retry-initial", "inf"], "--retry-initial: must be between 0 and 3600 seconds, not inf"),
        (["--retry-max", "nan"], "--retry-max: must be between --retry-initial (1) and 3600 seconds, not nan"),
        (["--retry-initial", "5", "--retry-max", "2"],
         "--retry-max: must be between --retry-initial (5) and 3600 seconds, not 2"),
        (["--max-cycles", "0"], "--max-cycles: must be 1 or more, not 0"),
        (["--max-cycles", "-1"], "--max-cycles: must be 1 or more, not -1"),
        (["--max-resyncs", "0"], "--max-resyncs: must be 1 or more, not 0"),
    ],
)  # fmt: skip
def test_watch_refuses_numbers_out_of_range(args, message):
    factories.VCenterFactory(name="lab")
    assert refused("watch_vcenter", "lab", *args) == message
