import pytest

from placement.vm_settings import large_bar_settings, mmio_size_gb


@pytest.mark.parametrize(
    ("total_gb", "size"),
    [(17, 64), (24, 64), (32, 64), (48, 128), (80, 256), (188, 512), (320, 1024), (640, 2048)],
)
def test_mmio_size_is_the_total_rounded_up_to_a_power_of_two_and_doubled(total_gb, size):
    assert mmio_size_gb(total_gb) == size


def test_two_h100_nvl_cards_need_efi_and_512_gb_of_64_bit_mmio():
    needed = large_bar_settings([("passthrough", 95830), ("passthrough", 95830)])
    assert (needed.gpu_memory_gb, needed.mmio_size_gb) == (188, 512)
    assert needed.vm_settings() == {
        "firmware": "efi",
        "pciPassthru.use64bitMMIO": "TRUE",
        "pciPassthru.64bitMMIOSizeGB": "512",
    }


def test_dynamic_passthrough_counts_like_passthrough():
    assert large_bar_settings([("dynamic-passthrough", 46068)]).mmio_size_gb == 128


@pytest.mark.parametrize(
    "devices",
    [[("vgpu", 81920)], [("mig", 40960), ("vgpu", 81920)], [("passthrough", 16384)], []],
)
def test_vgpus_and_small_gpus_need_nothing(devices):
    assert large_bar_settings(devices) is None
