"""The Traces page's fast paths answer as the plain ones: the sort columns are the sort keys,
the warmed start ranks order a search's candidates as the index does, and the anchored byte
search finds what the tools' regex finds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from halo_live.engine.tools import open_store, run_tool
from halo_live.engine.ui import api, textsearch
from tests import _ui_helpers as ui


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = ui.write_dataset(Path(tmp_path_factory.mktemp("ui-fast")) / "traces.jsonl", traces=80)
    with open_store(path) as s:
        yield s


def test_the_sort_columns_are_the_sort_keys_in_trace_number_order(store):
    with store.snapshot() as snap:
        ids, values = snap.sort_columns()
        assert dict(zip(ids, values)) == snap.sort_keys() and len(ids) == snap.count() == len(set(ids))


@pytest.mark.parametrize("field", range(3))
@pytest.mark.parametrize("filters", [{}, {"has_errors": True}, {"has_errors": False}])
def test_top_ranks_as_every_key_does(store, field, filters):
    with store.snapshot() as snap:
        ids = snap.trace_ids(api.index_filters(api.TraceFilters(**filters))) if filters else None
        keys = snap.sort_keys()
        ranked = sorted((-keys[t][field], t) for t in (ids if ids is not None else keys))
        warm = api.SortKeys()
        warm.warm(store)
        for sort_keys in (api.SortKeys(), warm):
            assert sort_keys.top(snap, ids, field, 7) == ([t for _, t in ranked[:7]], len(ranked))
            assert sort_keys.top(snap, ids, field, 10**6) == ([t for _, t in ranked], len(ranked))


@pytest.mark.parametrize("sort", ["newest", "oldest"])
def test_a_narrowed_search_orders_its_candidates_by_the_warmed_ranks_as_the_index_does(store, sort, monkeypatch):
    keys = api.SortKeys()
    assert keys.warm(store) and keys.ready
    filters = {"has_errors": True, "regex_pattern": "STATUS_CODE_(OK|ERROR)"}
    pages = {}
    for few in (0, 10**9):  # always / never ordered from the ranks
        monkeypatch.setattr(api, "FEW_CANDIDATES", few)
        pages[few] = [api.traces_page(store, filters, sort, limit, offset, sort_keys=keys, exact=True)
                      for limit, offset in ((3, 0), (3, 3), (500, 2))]
    assert pages[0] == pages[10**9] and pages[0][2]["result"]["total"] > 6


TEXTS = ["STATUS_CODE_ERROR", "weather in Paris?", '"name": "', "<script>", "no such text", "Z", "}"]


@pytest.mark.parametrize("sample, rare", [(0, 1.0), (10**9, 1.0), (0, 0.0), (200, 1 / 256)])
def test_the_byte_search_finds_what_the_regex_finds(store, sample, rare, monkeypatch):
    """Anchored on a rare byte or not, chosen early or late: the traces the tools' regex_pattern
    (re.escape of the text) finds, in the candidates' order, and a stop at `enough`."""
    monkeypatch.setattr(textsearch, "SAMPLE_BYTES", sample)
    monkeypatch.setattr(textsearch, "RARE", rare)
    with store.snapshot() as snap:
        ids = snap.trace_ids_by_start()
        for text in TEXTS:
            pattern = re.escape(text)
            expected = run_tool(store, "query_traces", {"filters": {"regex_pattern": pattern}, "limit": 500})
            expected_ids = {t["trace_id"] for t in expected["result"]["traces"]}
            found, complete = textsearch.find_traces(snap, ids, pattern, None)
            assert complete and found == [t for t in ids if t in expected_ids], text
            if len(found) > 2:
                assert textsearch.find_traces(snap, ids, pattern, 2) == (found[:2], False)
