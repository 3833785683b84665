"""The what-if charts drawn on the server (``placement/whatif_svg.py``)."""

from placement.whatif_svg import memory_maps


def test_a_large_estate_draws_the_most_siloed_gpus_and_says_how_many_it_left_out():
    """A what-if of a stored 100-host cluster drew 800 GPU rows: a 2 MB page."""

    def gpu(index: int, siloed: int) -> dict:
        return {"index": index, "capacity_gb": 80, "free_gb": siloed, "siloed_gb": siloed, "vms": [], "mode": "mixed"}

    layout = [{"host": f"esx-{h:03d}", "gpus": [gpu(i, (h * 8 + i) % 7) for i in range(8)]} for h in range(100)]
    svg = memory_maps(layout, title="Worst run", limit=32)
    assert "the 32 most siloed of 800 GPUs" in svg
    assert svg.count("<rect class='gpu'") == 32
    assert "6 siloed" in svg and "0 siloed" not in svg
    small = memory_maps(layout[:2], title="Worst run", limit=32)
    assert small.count("<rect class='gpu'") == 16 and "most siloed" not in small
