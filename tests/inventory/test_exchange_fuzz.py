"""Fuzzing the inventory import document: a snapshot or InventoryFileError naming a JSON path, nothing else."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory.exchange import InventoryFileError, snapshot_from_document
from tests.mutations import FUZZ_SETTINGS, JSON_VALUES, mutated_document, no_hang
from tests.vcsim import LABS

DEMO = (LABS / "demo.json").read_text()
EDGE = (LABS / "edge.json").read_text()


def test_the_seeds_are_valid_documents():
    assert snapshot_from_document(json.loads(DEMO)).hosts
    assert snapshot_from_document(json.loads(EDGE)).hosts


@pytest.mark.reliability("parsers", "inventory document: mutated lab documents and arbitrary JSON (Hypothesis)")
@FUZZ_SETTINGS
@given(
    st.one_of(
        mutated_document(lambda: json.loads(DEMO)),
        mutated_document(lambda: json.loads(EDGE)),
        mutated_document(lambda: json.loads(DEMO)),
        JSON_VALUES,
        st.dictionaries(st.sampled_from(["hosts", "clusters", "vms", "datacenter"]), JSON_VALUES),
    )
)
def test_document_reader_raises_only_its_own_error(doc):
    with no_hang():
        try:
            snapshot = snapshot_from_document(doc)
        except InventoryFileError as exc:
            assert exc.path.startswith("$") and exc.reason
            return
    assert len({h.name for h in snapshot.hosts}) == len(snapshot.hosts)
