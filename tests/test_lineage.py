"""AgentLineage: resolving a span's enclosing agent across batches, and holding a line for it."""

from __future__ import annotations

import threading

import pytest

from halo_live.exporter.lineage import AgentLineage

T = "a" * 32


def _finish(span: str):
    return lambda agent: f"{span}:{agent}".encode()


def test_resolution_walks_up_through_unnamed_spans():
    lineage = AgentLineage(lambda lines: None)
    lineage.add(T, "root", "", None)
    lineage.add(T, "agent", "root", "planner")
    lineage.add(T, "turn", "agent", None)
    lineage.add(T, "llm", "turn", None)
    lineage.add(T, "orphan", "missing", None)
    lineage.add(T, "plain", "root", None)
    assert lineage.resolve(T, "llm") == ("named", "planner")
    assert lineage.resolve(T, "agent") == ("none", None)  # its own name is not "above" it
    assert lineage.resolve(T, "plain") == ("none", None)
    assert lineage.resolve(T, "orphan") == ("unknown", None)
    lineage.add(T, "loop1", "loop2", None)
    lineage.add(T, "loop2", "loop1", None)
    assert lineage.resolve(T, "loop1")[0] == "none"  # a cycle ends, unnamed


def test_a_held_line_is_named_when_its_agent_arrives_later():
    released: list[bytes] = []
    lineage = AgentLineage(released.extend, wait=60)
    lineage.add(T, "llm", "turn", None)
    assert lineage.place(T, "llm", _finish("llm")) is None
    lineage.add(T, "turn", "agent", None)
    assert lineage.settle({T}) == []  # still unknown above the turn
    lineage.add(T, "agent", "", "coder")
    assert lineage.settle({T}) == [b"llm:coder"]
    assert lineage.held == 0
    lineage.close()
    assert released == []


def test_held_lines_are_released_unnamed_past_the_bounds():
    released: list[bytes] = []
    done = threading.Event()

    def release(lines):
        released.extend(lines)
        if len(released) >= 2:
            done.set()

    lineage = AgentLineage(release, wait=0.05, max_held=1)
    for span in ("one", "two"):
        lineage.add(T, span, "never", None)
        assert lineage.place(T, span, _finish(span)) is None
    assert released == [b"one:None"]  # past max_held: the oldest goes at once
    assert done.wait(30)  # past `wait`: the timer releases the other
    assert released == [b"one:None", b"two:None"]
    lineage.close()


def test_nothing_is_held_with_wait_zero_or_after_close():
    lineage = AgentLineage(lambda lines: None, wait=0)
    lineage.add(T, "x", "missing", None)
    assert lineage.place(T, "x", _finish("x")) == b"x:None"
    held = AgentLineage(lambda lines: None, wait=60)
    held.close()
    held.add(T, "y", "missing", None)
    assert held.place(T, "y", _finish("y")) == b"y:None"
    with pytest.raises(ValueError):
        AgentLineage(lambda lines: None, wait=-1)
