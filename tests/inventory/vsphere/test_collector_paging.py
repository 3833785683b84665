"""Paging and cancel paths of the PropertyCollector loop (vcsim never pages, so a fake collector returns tokens)."""

from types import SimpleNamespace

import pytest

from inventory.vsphere.collector import retrieve_pages


class FakePropertyCollector:
    def __init__(self, pages: list[list[str]], fail_on_continue: int | None = None):
        self.pages = pages
        self.fail_on_continue = fail_on_continue
        self.calls: list[tuple[str, object]] = []

    def _result(self, index: int):
        token = f"token-{index + 1}" if index + 1 < len(self.pages) else None
        return SimpleNamespace(objects=self.pages[index], token=token)

    def RetrievePropertiesEx(self, specSet, options):
        self.calls.append(("retrieve", options.maxObjects))
        return self._result(0)

    def ContinueRetrievePropertiesEx(self, token):
        self.calls.append(("continue", token))
        index = int(token.split("-")[1])
        if self.fail_on_continue == index:
            raise ConnectionResetError("peer went away")
        return self._result(index)

    def CancelRetrievePropertiesEx(self, token):
        self.calls.append(("cancel", token))


def test_follows_tokens_until_none_and_never_cancels_a_finished_retrieval():
    pc = FakePropertyCollector([["h1", "h2"], ["h3", "h4"], ["vm1"]])
    pages = list(retrieve_pages(pc, spec=object(), page_size=2))
    assert pages == [["h1", "h2"], ["h3", "h4"], ["vm1"]]
    assert pc.calls == [("retrieve", 2), ("continue", "token-1"), ("continue", "token-2")]


def test_single_page_needs_one_round_trip():
    pc = FakePropertyCollector([["h1"]])
    assert list(retrieve_pages(pc, spec=object())) == [["h1"]]
    assert pc.calls == [("retrieve", 1000)]


def test_empty_result_is_a_single_empty_page():
    pc = FakePropertyCollector([[]])
    assert list(retrieve_pages(pc, spec=object())) == [[]]


def test_early_exit_cancels_the_server_side_result_set():
    pc = FakePropertyCollector([["a"], ["b"], ["c"]])
    pages = retrieve_pages(pc, spec=object(), page_size=1)
    assert next(pages) == ["a"]
    pages.close()
    assert pc.calls[-1] == ("cancel", "token-1")


def test_consumer_exception_cancels_with_the_pending_token():
    pc = FakePropertyCollector([["a"], ["b"], ["c"]])
    with pytest.raises(RuntimeError):
        for page in retrieve_pages(pc, spec=object(), page_size=1):
            if page == ["b"]:
                raise RuntimeError("mapping failed")
    assert pc.calls[-1] == ("cancel", "token-2")


def test_a_fault_while_continuing_propagates_and_a_failing_cancel_does_not_mask_it():
    pc = FakePropertyCollector([["a"], ["b"], ["c"]], fail_on_continue=2)

    def dead_cancel(token):
        pc.calls.append(("cancel", token))
        raise ConnectionResetError("still down")

    pc.CancelRetrievePropertiesEx = dead_cancel
    with pytest.raises(ConnectionResetError, match="peer went away"):
        list(retrieve_pages(pc, spec=object(), page_size=1))
    # Best effort: the server may still hold the result set if only that call failed.
    assert pc.calls[-1] == ("cancel", "token-2")
