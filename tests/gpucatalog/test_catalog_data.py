from gpucatalog.catalog import load_catalog


def test_catalog_boards_and_tables_load():
    catalog = load_catalog()
    h100 = catalog.boards["H100-80GB"]
    assert h100.framebuffer_gb == 80
    assert h100.timesliced[20].max_equal == 4
    assert h100.timesliced[16].placement_ids_gb == (0, 24, 40, 64)
    assert h100.mig.compute_slices == 7 and h100.mig.memory_slices == 8
    assert h100.mig.by_name("3g.40gb").placements == (0, 4)
    assert catalog.boards["A30-24GB"].mig.memory_slices == 4
    assert catalog.boards["H200-141GB"].supports_mixed_size is False


def test_every_mixed_placement_fits_the_framebuffer():
    for board in load_catalog().boards.values():
        for gb, profile in board.timesliced.items():
            for start in profile.placement_ids_gb or ():
                assert start + gb <= board.framebuffer_gb, (board.key, gb, start)
            assert profile.max_mixed <= profile.max_equal


def test_board_lookup_by_pci_id_and_name():
    catalog = load_catalog()
    assert catalog.board_for_device(0x2330, "NVIDIA H100 80GB HBM3", 81559).key == "H100-80GB"
    assert catalog.board_for_device(0x2321, "NVIDIA H100 NVL", 95830).key == "H100-94GB"
    assert catalog.board_for_device(0x26B9, "").key == "L40S-48GB"
    assert catalog.board_for_device(0x20B5, "NVIDIA A100 80GB PCIe").key == "A100-80GB"
    assert catalog.board_for_device(0x20F1, "NVIDIA A100-PCIE-40GB").key == "A100-40GB"
    assert catalog.board_for_device(0x1234, "Matrox G200") is None


def test_bandwidth_model():
    catalog = load_catalog()
    assert catalog.nvlink_gbps(4, 18) == 450.0
    assert catalog.nvlink_gbps(3, 12) == 300.0
    assert catalog.pcie_gbps(5) == 63.0
    assert catalog.pcie_gbps(None) == 31.5
