"""The what-if charts drawn on the server (``placement/whatif_svg.py``)."""

from placement.whatif_svg import histogram, memory_maps


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


def test_a_locked_gpu_says_how_much_of_its_free_memory_its_lock_keeps():
    """Same size: a GPU holding two 10C VMs has 60 GB free, none siloed, all of it locked to 10C."""
    vms = [{"vm": f"vm{i}", "profile": "grid_a100-10c", "start": 10 * i, "size": 10} for i in range(2)]
    gpu = {"index": 0, "capacity_gb": 80, "free_gb": 60, "siloed_gb": 0, "locked_gb": 60, "lock": "grid_a100-10c",
           "vms": vms, "mode": "same"}  # fmt: skip
    empty = {"index": 1, "capacity_gb": 80, "free_gb": 80, "siloed_gb": 0, "locked_gb": 0, "lock": None, "vms": [],
             "mode": "same"}  # fmt: skip
    svg = memory_maps([{"host": "esx-1", "gpus": [gpu, empty]}], title="Worst run")
    assert ">60 GB free, 0 siloed, 60 locked</text>" in svg
    assert "esx-1 #0: 60 GB free, 0 siloed, 60 locked to grid_a100-10c</title>" in svg
    assert ">80 GB free, 0 siloed</text>" in svg and "80 GB free, 0 siloed, 0 locked" not in svg


def test_a_histogram_says_its_bars_count_runs():
    """The y axis had a bare "14" and "0": 14 what?"""
    svg = histogram([[0, 3], [4, 14]], {"p50": 4, "p90": 4, "p95": 4, "p99": 4, "max": 4}, title="Siloed GB per run",
                    unit=" GB")  # fmt: skip
    assert ">14 runs</text>" in svg and ">0</text>" in svg
    one = histogram([[0, 1]], {"p50": 0, "max": 0}, title="Rejected requests per run")
    assert ">1 run</text>" in one
