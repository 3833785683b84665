"""A board is recognised by its family as a whole model number in the name, not as any substring of it (Trial O).

NVIDIA's MIG user guide ("Supported GPUs") lists GPUs whose names contain a catalog family without being that board:
"H100 on GH200" (96 GB), GB200 (186 GB) beside H200 (141 GB) and B200 (180 GB); the RTX A1000 and A3000 are 8 and
6/12 GB Ampere workstation GPUs, not the A100 and A30. Matched as substrings they took the catalog board's vGPU tables,
MIG geometry and framebuffer (a GH200 host was planned and sized as H200 141 GB, and its 96 GB reported memory then
stood for every H200 in the sizing helper)."""

import pytest

from gpucatalog.catalog import load_catalog


@pytest.mark.parametrize(
    ("name", "memory_mb"),
    [
        ("NVIDIA GH200 480GB", 97871),
        ("NVIDIA GH200 144G HBM3e", 146831),
        ("NVIDIA GB200", 189471),
        ("NVIDIA RTX A1000", 8192),
        ("NVIDIA RTX A3000 12GB Laptop GPU", 12288),
        ("NVIDIA RTX PRO 6000 Blackwell Server Edition", 97887),
    ],
)
def test_a_name_containing_a_family_as_part_of_another_model_is_no_catalog_board(name, memory_mb):
    assert load_catalog().board_for_device(None, name, memory_mb) is None


@pytest.mark.parametrize(
    ("name", "memory_mb", "key"),
    [
        ("NVIDIA H200 NVL", 143771, "H200-141GB"),
        ("NVIDIA H200", 143771, "H200-141GB"),
        ("NVIDIA B200", 183359, "B200-180GB"),
        ("NVIDIA A100-SXM4-40GB", None, "A100-40GB"),
        ("GA100 [A100 PCIe 80GB]", None, "A100-80GB"),
        ("GH100 [H100 SXM5 80GB]", 81559, "H100-80GB"),
        ("NVIDIA L40", 46068, "L40S-48GB"),
        ("NVIDIA L40S", 46068, "L40S-48GB"),
        ("NVIDIA L4", 23034, "L4-24GB"),
        ("NVIDIA A30", 24258, "A30-24GB"),
    ],
)
def test_the_catalog_families_are_still_recognised_by_name(name, memory_mb, key):
    board = load_catalog().board_for_device(None, name, memory_mb)
    assert board is not None and board.key == key
