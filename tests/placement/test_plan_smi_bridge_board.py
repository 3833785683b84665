"""``plan --smi`` warns when the capture's NVLink groups are larger than the named board's bridges join (Trial O).

NVIDIA bridges H100 NVL, A100 PCIe and A30 cards in pairs only (their product briefs, cited in the catalog's form
factors); the H200 NVL also takes a 4-way bridge. A capture showing four PCIe cards NVLinked together (no NVSwitch)
planned as H100-94GB without a word, while a capture with NVLink on a board without any is refused."""

from __future__ import annotations

import io
import json

from django.core.management import call_command

from tests.inventory.topology.test_bridge_groups import NV6_MESH as FOUR_WAY  # four bridged PCIe cards, NV6 a pair


def warnings_for(tmp_path, board: str) -> list[str]:
    capture = tmp_path / "four-way.txt"
    capture.write_text(FOUR_WAY)
    out = io.StringIO()
    call_command("plan", "--smi", str(capture), "--gpus", "2", "--board", board, "--json", stdout=out)
    return json.loads(out.getvalue())["warnings"]


def test_a_four_card_nvlink_group_on_a_pairs_only_board_is_questioned(tmp_path):
    (warning,) = [w for w in warnings_for(tmp_path, "H100-94GB") if "NVLink bridges" in w]
    assert "H100-94GB" in warning and "at most 2" in warning and "GPU0-GPU3" in warning


def test_the_h200_nvl_four_way_bridge_is_not_questioned(tmp_path):
    assert not [w for w in warnings_for(tmp_path, "H200-141GB") if "NVLink bridges" in w]
