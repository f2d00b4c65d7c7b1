"""OTLP protobuf and OTLP/JSON requests become canonical HALO lines, field by field."""

from __future__ import annotations

import base64

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from halo_live.exporter import canonical
from halo_live.exporter.otlp_convert import InvalidRequest, from_protobuf
from halo_live.exporter.receiver_json import from_json
from tests._otlp_helpers import PARENT_ID, SPAN_ID, TRACE_ID, json_request, json_span, make_agent_spans


def _lines(conversion) -> list[dict]:
    return [orjson.loads(line) for line in conversion.lines]


def test_sdk_spans_via_protobuf_keep_every_field():
    spans = make_agent_spans(resource_attrs={"deployment.environment": "ci"})
    conv = from_protobuf(encode_spans(spans).SerializeToString(), project_id="proj-x")
    assert conv.rejected == 0 and conv.error_message == ""
    lines = _lines(conv)
    assert [line[canonical.NAME] for line in lines] == [s.name for s in spans]
    for span, line in zip(spans, lines):
        ctx = span.get_span_context()
        assert line[canonical.TRACE_ID] == format(ctx.trace_id, "032x")
        assert line[canonical.SPAN_ID] == format(ctx.span_id, "016x")
        assert line[canonical.PARENT_SPAN_ID] == (format(span.parent.span_id, "016x") if span.parent else "")
        assert line[canonical.TRACE_STATE] == ""
        assert line[canonical.KIND] == "SPAN_KIND_" + span.kind.name
        assert line[canonical.START_TIME] == canonical.iso_from_ns(span.start_time)
        assert line[canonical.END_TIME] == canonical.iso_from_ns(span.end_time)
        assert line[canonical.START_TIME].endswith("Z") and len(line[canonical.START_TIME].split(".")[1]) == 10
        assert line[canonical.RESOURCE] == {canonical.ATTRIBUTES: dict(span.resource.attributes)}
        assert line[canonical.SCOPE] == {"name": "test-scope", "version": "9.9.9"}
        assert set(line[canonical.STATUS]) == {"code", "message"}
        for key, value in span.attributes.items():
            assert line[canonical.ATTRIBUTES][key] == (list(value) if isinstance(value, tuple) else value)
        attrs = line[canonical.ATTRIBUTES]
        assert attrs[canonical.INF_SCHEMA_VERSION] == canonical.SCHEMA_VERSION
        assert attrs[canonical.INF_PROJECT_ID] == "proj-x"

    by_name = {line[canonical.NAME]: line for line in lines}
    agent, llm = by_name["invoke_agent planner"], by_name["chat gpt-4o"]
    tool = by_name["execute_tool search"]
    assert agent[canonical.STATUS] == {"code": canonical.STATUS_OK, "message": ""}
    assert agent[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == canonical.OBS_AGENT
    assert agent[canonical.ATTRIBUTES][canonical.INF_AGENT_NAME] == "planner"
    assert agent[canonical.ATTRIBUTES][canonical.INF_SESSION_ID] == "sess-1"
    assert llm[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == canonical.OBS_LLM
    assert llm[canonical.ATTRIBUTES][canonical.INF_LLM_MODEL_NAME] == "gpt-4o"
    assert llm[canonical.ATTRIBUTES][canonical.INF_LLM_PROVIDER] == "openai"
    assert llm[canonical.ATTRIBUTES][canonical.INF_LLM_INPUT_TOKENS] == 120
    assert llm[canonical.ATTRIBUTES][canonical.INF_LLM_OUTPUT_TOKENS] == 7
    assert llm[canonical.ATTRIBUTES]["stop"] == ["\n", "END"] and llm[canonical.ATTRIBUTES]["stream"] is False
    assert llm[canonical.EVENTS] == [{"name": "first_token", "time": llm[canonical.EVENTS][0]["time"],
                                "attributes": {"latency_ms": 42}}]
    assert llm[canonical.LINKS] == [{"trace_id": agent[canonical.TRACE_ID], "span_id": agent[canonical.SPAN_ID],
                               "trace_state": "", "attributes": {"why": "caused-by"}}]
    # An ERROR status without a description takes the exception event's message.
    assert tool[canonical.STATUS] == {"code": canonical.STATUS_ERROR, "message": "TimeoutError: search timed out"}
    assert tool[canonical.ATTRIBUTES][canonical.INF_OBSERVATION_KIND] == canonical.OBS_TOOL
    # the reference reads kinds (and counts tool errors) from openinference.span.kind only
    assert [line[canonical.ATTRIBUTES][canonical.OI_SPAN_KIND] for line in (agent, llm, tool)] == \
        [canonical.OBS_AGENT, canonical.OBS_LLM, canonical.OBS_TOOL]
    assert tool[canonical.EVENTS][0]["name"] == "exception"
    assert canonical.LINKS not in tool and canonical.EVENTS not in agent


def test_resource_project_id_wins_over_the_default():
    spans = make_agent_spans(resource_attrs={canonical.INF_PROJECT_ID: "from-resource"})
    conv = from_protobuf(encode_spans(spans).SerializeToString(), project_id="proj-x")
    assert {line[canonical.ATTRIBUTES][canonical.INF_PROJECT_ID] for line in _lines(conv)} == {"from-resource"}


def test_json_span_with_every_value_type():
    conv = from_json(json_request([json_span()]), project_id="p")
    assert conv.rejected == 0
    (line,) = _lines(conv)
    assert line[canonical.TRACE_ID] == TRACE_ID and line[canonical.SPAN_ID] == SPAN_ID
    assert line[canonical.PARENT_SPAN_ID] == PARENT_ID and line[canonical.TRACE_STATE] == "vendor=1"
    assert line[canonical.KIND] == canonical.SPAN_KIND_CLIENT
    assert line[canonical.START_TIME] == "2018-12-13T14:51:00.300000000Z"
    assert line[canonical.END_TIME] == "2018-12-13T14:51:01.123456789Z"
    assert line[canonical.STATUS] == {"code": canonical.STATUS_ERROR, "message": "KeyError: 'x'"}
    assert line[canonical.RESOURCE] == {"attributes": {"service.name": "json-svc"}}
    assert line[canonical.SCOPE] == {"name": "json-scope", "version": "1.0"}
    attrs = line[canonical.ATTRIBUTES]
    assert attrs["s"] == "text"
    assert attrs["i"] == 9007199254740993 and attrs["i_num"] == 5  # 64-bit exact
    assert attrs["d"] == 0.5 and attrs["d_nan"] == "nan"
    assert attrs["b"] is True
    assert attrs["arr"] == ["a", 2, False]
    assert attrs["kv"] == {"inner": 1.5, "deep": [1]}
    assert base64.b64decode(attrs["bytes"]) == b"\x00\x01\x02"
    assert attrs["empty"] is None
    assert attrs[canonical.INF_OBSERVATION_KIND] == canonical.OBS_LLM
    assert attrs[canonical.INF_LLM_MODEL_NAME] == "gpt-x" and attrs[canonical.INF_LLM_INPUT_TOKENS] == 11
    assert attrs[canonical.INF_PROJECT_ID] == "p"
    assert line[canonical.EVENTS] == [{"name": "exception", "time": "2018-12-13T14:51:00.500000000Z",
                                 "attributes": {"exception.type": "KeyError",
                                                "exception.message": "'x'"}}]
    assert line[canonical.LINKS] == [{"trace_id": "a" * 32, "span_id": "b" * 16, "trace_state": "",
                                "attributes": {"l": 1}}]
    assert line["dropped_attributes_count"] == 2 and line["dropped_events_count"] == 1
    assert "dropped_links_count" not in line


def test_json_accepts_enum_names_snake_case_and_an_explicit_message():
    span = json_span(kind="SPAN_KIND_PRODUCER", status={"code": "STATUS_CODE_ERROR", "message": "own"},
                     parentSpanId=None)
    span["start_time_unix_nano"] = span.pop("startTimeUnixNano")
    (line,) = _lines(from_json(json_request([span])))
    assert line[canonical.KIND] == canonical.SPAN_KIND_PRODUCER and line[canonical.PARENT_SPAN_ID] == ""
    assert line[canonical.STATUS] == {"code": canonical.STATUS_ERROR, "message": "own"}
    assert line[canonical.START_TIME] == "2018-12-13T14:51:00.300000000Z"


def test_project_id_from_resource_in_json():
    body = json_request([json_span()], resource=[
        {"key": canonical.INF_PROJECT_ID, "value": {"stringValue": "res-proj"}}])
    (line,) = _lines(from_json(body, project_id="default"))
    assert line[canonical.ATTRIBUTES][canonical.INF_PROJECT_ID] == "res-proj"


@pytest.mark.parametrize("override, problem", [
    ({"traceId": "abc"}, "traceId"),
    ({"traceId": "abcd"}, "trace_id"),
    ({"traceId": "0" * 32}, "trace_id"),
    ({"traceId": "zz" * 16}, "not hex"),
    ({"spanId": "12"}, "span_id"),
    ({"parentSpanId": "1234"}, "parent_span_id"),
    ({"name": ""}, "no name"),
    ({"kind": 9}, "kind"),
    ({"status": {"code": 7}}, "status code"),
    ({"startTimeUnixNano": "soon"}, "startTimeUnixNano"),
    ({"endTimeUnixNano": "18446744073709551616"}, "64-bit"),
    ({"attributes": [{"key": "n", "value": {"intValue": "99999999999999999999999"}}]}, "64-bit"),
    ({"attributes": [{"key": "n", "value": {"intValue": "x"}}]}, "intValue"),
    ({"attributes": [{"key": "n", "value": {"mystery": 1}}]}, "unknown value type"),
    ({"attributes": [{"value": {"intValue": "1"}}]}, "no string key"),
])
def test_an_unusable_json_span_is_rejected_and_the_rest_kept(override, problem):
    good = json_span(spanId="1111111111111111")
    conv = from_json(json_request([good, json_span(**override)]))
    assert conv.rejected == 1 and len(conv.lines) == 1
    assert problem in conv.error_message and "spans[1]" in conv.error_message
    assert orjson.loads(conv.lines[0])[canonical.SPAN_ID] == "1111111111111111"


def test_bad_protobuf_ids_are_rejected_per_span():
    request = encode_spans(make_agent_spans())
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].trace_id = b"\x01\x02"
    spans[1].name = ""
    conv = from_protobuf(request.SerializeToString())
    assert conv.rejected == 2 and len(conv.lines) == 1
    assert "trace_id" in conv.error_message and "no name" in conv.error_message


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"resourceSpans": 3}',
                                  b'{"resourceSpans": [{"scopeSpans": [{"spans": {}}]}]}',
                                  b'{"resourceSpans": [{"resource": []}]}'])
def test_malformed_json_request_is_invalid(body):
    with pytest.raises(InvalidRequest):
        from_json(body)


@pytest.mark.parametrize("body", [b"\xff\xff\xff\xff", b"garbage that is not protobuf", b"\x0a\x05\x01"])
def test_malformed_protobuf_request_is_invalid(body):
    with pytest.raises(InvalidRequest):
        from_protobuf(body)


def test_empty_requests_convert_to_nothing():
    assert from_protobuf(b"").lines == [] and from_json(b"{}").lines == []


def test_lines_are_exactly_the_canonical_encoding():
    """The receiver's spliced fast path gives the bytes `encode_line` gives, keys in canonical order."""
    spans = make_agent_spans(resource_attrs={"k": [1, 2]})
    lines = from_protobuf(encode_spans(spans).SerializeToString()).lines
    lines += from_json(json_request([json_span()])).lines
    order = [canonical.TRACE_ID, canonical.SPAN_ID, canonical.PARENT_SPAN_ID, canonical.TRACE_STATE, canonical.NAME, canonical.KIND,
             canonical.START_TIME, canonical.END_TIME, canonical.STATUS, canonical.RESOURCE, canonical.SCOPE, canonical.ATTRIBUTES]
    for raw in lines:
        line = orjson.loads(raw)
        assert canonical.encode_line(line) == raw
        assert list(line)[: len(order)] == order
        rebuilt = canonical.canonical_line(
            trace_id=line[canonical.TRACE_ID], span_id=line[canonical.SPAN_ID],
            parent_span_id=line[canonical.PARENT_SPAN_ID], trace_state=line[canonical.TRACE_STATE],
            name=line[canonical.NAME], kind=line[canonical.KIND], start_time=line[canonical.START_TIME],
            end_time=line[canonical.END_TIME], status_code=line[canonical.STATUS]["code"],
            status_message=line[canonical.STATUS]["message"],
            resource_attributes=line[canonical.RESOURCE][canonical.ATTRIBUTES],
            scope_name=line[canonical.SCOPE]["name"], scope_version=line[canonical.SCOPE]["version"],
            attributes=line[canonical.ATTRIBUTES],
            extra={k: v for k, v in line.items() if k not in order})
        assert canonical.encode_line(rebuilt) == raw


@pytest.mark.parametrize("ns", [0, 1, 999_999_999, 1_700_000_000_123_456_789, 4_102_444_800_000_000_001])
def test_times_match_the_format_module(ns):
    from halo_live.exporter.otlp_convert import _iso

    assert _iso(ns) == canonical.iso_from_ns(ns)


def test_mutated_requests_never_crash_the_conversion():
    """Random damage to valid bodies gives a Conversion or InvalidRequest, never another error."""
    import random

    rng = random.Random(7)
    weird = [None, 0, -1, "18446744073709551617", 1e308, "1e400", "", "x", [], {}, [1], {"a": 1},
             True, 3.5, "NaN", "-9223372036854775809", 9223372036854775807, "Infinity"]

    def mutate(obj):
        if isinstance(obj, dict) and obj:
            obj = dict(obj)
            key = rng.choice(list(obj))
            obj[key] = rng.choice(weird) if rng.random() < 0.5 else mutate(obj[key])
        elif isinstance(obj, list) and obj:
            obj = list(obj)
            i = rng.randrange(len(obj))
            obj[i] = mutate(obj[i])
        else:
            obj = rng.choice(weird)
        return obj

    base = orjson.loads(json_request([json_span()]))
    for _ in range(1500):
        try:
            from_json(orjson.dumps(mutate(mutate(mutate(base)))))
        except InvalidRequest:
            pass
    body = encode_spans(make_agent_spans()).SerializeToString()
    for _ in range(1500):
        damaged = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            from_protobuf(bytes(damaged))
        except InvalidRequest:
            pass


def test_llm_and_tool_spans_get_the_enclosing_agent_name_within_a_request():
    spans = make_agent_spans()
    lines = {line[canonical.NAME]: line for line in _lines(from_protobuf(
        encode_spans(spans).SerializeToString()))}
    assert lines["chat gpt-4o"][canonical.ATTRIBUTES][canonical.INF_AGENT_NAME] == "planner"
    assert lines["execute_tool search"][canonical.ATTRIBUTES][canonical.INF_AGENT_NAME] == "planner"
    assert "gen_ai.agent.name" not in lines["chat gpt-4o"][canonical.ATTRIBUTES]  # raw keys untouched
    alone = [s for s in spans if s.name == "chat gpt-4o"]  # its agent is not in this request
    (line,) = _lines(from_protobuf(encode_spans(alone).SerializeToString()))
    assert canonical.INF_AGENT_NAME not in line[canonical.ATTRIBUTES]


def test_agent_hint_in_json_and_a_parent_cycle_ends():
    agent = json_span(spanId="a" * 16, parentSpanId="c" * 16, name="agent", attributes=[
        {"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}},
        {"key": "gen_ai.agent.name", "value": {"stringValue": "writer"}}], events=None)
    llm = json_span(spanId="b" * 16, parentSpanId="a" * 16, events=None)
    cyc1 = json_span(spanId="c" * 16, parentSpanId="d" * 16, events=None, name="c")
    cyc2 = json_span(spanId="d" * 16, parentSpanId="c" * 16, events=None, name="d")
    lines = {line[canonical.NAME]: line for line in _lines(from_json(json_request([llm, agent, cyc1, cyc2])))}
    assert lines["chat"][canonical.ATTRIBUTES][canonical.INF_AGENT_NAME] == "writer"
    assert canonical.INF_AGENT_NAME not in lines["c"][canonical.ATTRIBUTES]


def _attr(key: str, value: str) -> dict:
    return {"key": key, "value": {"stringValue": value}}


def test_json_spans_get_openinference_kind_only_when_the_sender_set_none():
    tool = json_span(spanId="a" * 16, name="execute_tool", attributes=[
        _attr("gen_ai.operation.name", "execute_tool"), _attr("gen_ai.tool.name", "search")])
    retriever = json_span(spanId="b" * 16, name="retrieve", attributes=[
        _attr("gen_ai.operation.name", "execute_tool"), _attr("openinference.span.kind", "RETRIEVER")])
    guard = json_span(spanId="c" * 16, name="guard", attributes=[
        _attr(canonical.INF_OBSERVATION_KIND, canonical.OBS_GUARDRAIL)])
    plain = json_span(spanId="d" * 16, name="plain", attributes=[_attr("x", "y")])
    embed = json_span(spanId="e" * 16, name="embed", attributes=[
        _attr("gen_ai.operation.name", "embeddings")])
    lines = {line[canonical.NAME]: line[canonical.ATTRIBUTES]
             for line in _lines(from_json(json_request([tool, retriever, guard, plain, embed])))}
    assert lines["execute_tool"][canonical.OI_SPAN_KIND] == canonical.OBS_TOOL
    assert lines["retrieve"][canonical.OI_SPAN_KIND] == "RETRIEVER"  # never overrides the sender
    assert lines["guard"][canonical.OI_SPAN_KIND] == canonical.OBS_GUARDRAIL
    assert canonical.OI_SPAN_KIND not in lines["plain"] and canonical.OI_SPAN_KIND not in lines["embed"]


def test_agent_hint_follows_a_kind_the_sender_projected_itself():
    agent = json_span(spanId="a" * 16, parentSpanId="", name="agent", events=None, attributes=[
        _attr("gen_ai.operation.name", "invoke_agent"), _attr("gen_ai.agent.name", "writer")])
    tool = json_span(spanId="b" * 16, parentSpanId="a" * 16, name="lookup", events=None,
                     attributes=[_attr(canonical.INF_OBSERVATION_KIND, canonical.OBS_TOOL)])
    lines = {line[canonical.NAME]: line[canonical.ATTRIBUTES]
             for line in _lines(from_json(json_request([tool, agent])))}
    assert lines["lookup"][canonical.INF_OBSERVATION_KIND] == canonical.OBS_TOOL
    assert lines["lookup"][canonical.INF_AGENT_NAME] == "writer"
