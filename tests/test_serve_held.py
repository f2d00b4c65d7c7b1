"""`halo serve` holds an LLM/TOOL span for its agent's span, journaled: a SIGKILL loses none of them."""

from __future__ import annotations

from pathlib import Path

from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from halo_live.exporter import canonical
from halo_live.exporter.held_journal import MARK
from tests._otlp_helpers import read_lines
from tests._fault_helpers import ServeProcess


def _journals(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{MARK}*"))


def test_held_spans_survive_a_killed_server_and_named_ones_carry_their_agent(tmp_path):
    folder = tmp_path / "traces"
    serve = ServeProcess(f"{folder}/", "--index", "none")
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": "held"}))
        provider.add_span_processor(SimpleSpanProcessor(HttpExporter(endpoint=serve.http_url, timeout=10)))
        tracer = provider.get_tracer("genai")
        with tracer.start_as_current_span("invoke_agent done", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "finished"}):
            with tracer.start_as_current_span("chat named", attributes={"gen_ai.operation.name": "chat"}):
                pass
        agent = tracer.start_span("invoke_agent running", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "running"})
        with trace_api.use_span(agent, end_on_exit=False):
            for i in range(3):  # acknowledged, then held: their agent span has not ended
                with tracer.start_as_current_span(f"execute_tool t{i}", attributes={
                        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": f"t{i}"}):
                    pass
        shard = Path(serve.shard)
        written = {line[canonical.NAME]: line for line in read_lines(shard)}
        assert written["chat named"][canonical.ATTRIBUTES][canonical.INF_AGENT_NAME] == "finished"
        assert not any(name.startswith("execute_tool") for name in written)
        [journal] = _journals(folder)
        assert journal.stat().st_size > 0
    finally:
        serve.kill()  # SIGKILL: no shutdown path runs
    restarted = ServeProcess(f"{folder}/", "--index", "none")
    try:
        lines = read_lines(shard)
        tools = [line for line in lines if line[canonical.NAME].startswith("execute_tool")]
        assert sorted(line[canonical.NAME] for line in tools) == ["execute_tool t0", "execute_tool t1",
                                                                    "execute_tool t2"]
        assert len({line[canonical.SPAN_ID] for line in lines}) == len(lines) == 5, [(l[canonical.NAME], l[canonical.SPAN_ID], l[canonical.ATTRIBUTES].get(canonical.INF_AGENT_NAME)) for l in lines]
        assert _journals(folder) == []  # the new server holds nothing yet: no journal
        assert not journal.exists()  # the dead server's journal, written out and gone
    finally:
        code, err = restarted.terminate(), restarted.stderr_text()
    assert code == 0, err
    assert _journals(folder) == []  # a clean stop leaves no journal


def test_journal_records_held_lines_and_leftover_skips_released_ones(tmp_path):
    from halo_live.exporter.held_journal import HeldJournal, journal_path_for, leftover

    def line(span: str) -> bytes:
        return canonical.encode_line({canonical.TRACE_ID: "a" * 32, canonical.SPAN_ID: span})

    path = journal_path_for(tmp_path / "t.jsonl", pid=7)
    assert path.name == "t.held-7.ndjson"
    journal = HeldJournal(path)
    journal.record([line("1" * 16), line("2" * 16)])
    journal.released([line("1" * 16)])
    assert leftover(path) is None  # locked: a live server's
    journal.released([line("3" * 16)])  # released before its request recorded it
    journal.record([line("3" * 16)])
    with open(path, "ab") as f:
        f.write(b'{"held": "{}"}\n{"released": 5}\n')  # records of no use are skipped
        f.write(b'{"held": "cut by a cra')  # a record the crash cut was never acknowledged
    journal.close(remove=False)
    assert leftover(path) == [line("2" * 16)]
