"""Fault: hostile input, generated and mutated by Hypothesis.

- The JSONL line parser: the compiled scanner and the pure-Python parse give
  the same batch for any bytes, and every complete line is either a span or
  counted as bad.
- The OTLP/JSON and OTLP/protobuf decoders: any body either decodes or raises
  `InvalidRequest` (never another exception), and every line they produce is
  a span the index takes.
- The OTLP/HTTP endpoint: a bad body gets a 4xx, never a 5xx or a hang.

`HALO_FUZZ_EXAMPLES` sets the examples per test (the fast suite runs a few
hundred; `bench/soak.py --fuzz` runs thousands).
"""

from __future__ import annotations

import json
import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from halo_live.exporter import canonical
from halo_live.exporter.otlp_convert import InvalidRequest, from_protobuf
from halo_live.exporter.receiver_json import from_json
from halo_live.indexer import parse
from tests._fault_helpers import otlp_request, post_http
from tests._otlp_helpers import json_request, json_span, make_agent_spans, servers
from tests.test_index_native import as_dict

EXAMPLES = int(os.environ.get("HALO_FUZZ_EXAMPLES", "250"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

KEYS = [v for k, v in vars(canonical).items()
        if k.startswith(("INF_", "OI_", "GENAI_")) and isinstance(v, str)]
HEX = st.text("0123456789abcdefABCDEF", min_size=0, max_size=34)
TEXT = st.text(max_size=24)
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
           | st.floats(allow_nan=False, allow_infinity=False) | TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)
ATTRS = st.dictionaries(st.sampled_from(KEYS) | TEXT, VALUES, max_size=8)
TIMES = (st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z")
         | TEXT | st.integers() | st.none())


def _weird(strategy):
    """`strategy`, or any other JSON value in its place."""
    return strategy | VALUES


SPANS = st.fixed_dictionaries(
    {"trace_id": _weird(HEX), "span_id": _weird(HEX)},
    optional={
        "parent_span_id": _weird(HEX), "name": _weird(TEXT), "kind": _weird(TEXT),
        "start_time": TIMES, "end_time": TIMES,
        "status": _weird(st.fixed_dictionaries({"code": _weird(st.sampled_from(canonical.STATUS_CODES)),
                                                "message": _weird(TEXT)})),
        "resource": _weird(st.fixed_dictionaries({"attributes": _weird(ATTRS)})),
        "attributes": _weird(ATTRS),
    })


def _line(span: dict, ascii_only: bool) -> bytes:
    return json.dumps(span, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass") + b"\n"


@st.composite
def mutated(draw, base: bytes) -> bytes:
    """`base` with a few bytes flipped, inserted or deleted."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(("flip", "insert", "delete", "newline")))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        else:
            data[at:at] = b"\n"
    return bytes(data)


VALID_LINES = [_line(s, True) for s in (
    {"trace_id": "t1", "span_id": "s1", "parent_span_id": "", "name": "step",
     "start_time": "2026-01-01T00:00:01.000000000Z", "end_time": "2026-01-01T00:00:02.000000000Z",
     "status": {"code": canonical.STATUS_ERROR, "message": "boom"},
     "resource": {"attributes": {canonical.SERVICE_NAME: "svc"}},
     "attributes": {canonical.INF_LLM_MODEL_NAME: "m", canonical.INF_LLM_INPUT_TOKENS: 3,
                    canonical.INF_AGENT_NAME: "a", canonical.OI_SPAN_KIND: "TOOL"}},
)]

LINES = (SPANS.flatmap(lambda s: st.booleans().map(lambda a: _line(s, a)))
         | st.sampled_from(VALID_LINES).flatmap(mutated)
         | st.binary(max_size=200))


def _check_batch(data: bytes) -> parse.Batch:
    native = parse.parse_bytes(data, 3, 500)
    python = parse.parse_bytes_python(data, 3, 500)
    assert as_dict(native) == as_dict(python)
    complete = data[:data.rfind(b"\n") + 1]
    assert native.end == 500 + len(complete)
    nonempty = sum(1 for line in complete.split(b"\n")[:-1] if line)
    assert native.lines == nonempty
    # indexed, counted as bad, or skipped as a repeat of a span already read (a retried export)
    assert native.spans + native.bad_count + native.duplicates == native.lines
    return native


@pytest.mark.skipif(parse._scan is None, reason="the compiled scanner is not built")
@FUZZ
@given(st.lists(LINES, min_size=1, max_size=5), st.binary(max_size=20))
def test_native_and_python_line_parsers_agree_and_count_every_line(lines, tail):
    _check_batch(b"".join(lines) + tail.replace(b"\n", b""))


def _lines_are_spans(lines: list[bytes]) -> None:
    if lines:
        batch = _check_batch(b"".join(lines))
        assert batch.bad_count == 0 and batch.spans == len(lines)


# --- OTLP/JSON -------------------------------------------------------------------------------

ANY_VALUES = st.recursive(
    st.fixed_dictionaries({"stringValue": _weird(TEXT)}) | st.fixed_dictionaries({"intValue": _weird(
        st.integers(-(2 ** 65), 2 ** 65).map(str))}) | st.fixed_dictionaries({"doubleValue": _weird(
            st.floats() | st.sampled_from(["NaN", "Infinity", "-Infinity"]))})
    | st.fixed_dictionaries({"boolValue": _weird(st.booleans())})
    | st.fixed_dictionaries({"bytesValue": _weird(st.text(string.ascii_letters + "+/=", max_size=12))})
    | st.just({}),
    lambda inner: st.fixed_dictionaries({"arrayValue": st.fixed_dictionaries({"values": st.lists(inner, max_size=3)})})
    | st.fixed_dictionaries({"kvlistValue": st.fixed_dictionaries({"values": st.lists(
        st.fixed_dictionaries({"key": TEXT, "value": inner}), max_size=3)})}),
    max_leaves=6)
JSON_ATTRS = _weird(st.lists(st.fixed_dictionaries({"key": _weird(st.sampled_from(KEYS) | TEXT),
                                                    "value": _weird(ANY_VALUES)}), max_size=6))
JSON_SPANS = st.fixed_dictionaries(
    {"traceId": _weird(HEX), "spanId": _weird(HEX)},
    optional={"parentSpanId": _weird(HEX), "name": _weird(TEXT), "kind": _weird(st.integers(-2, 9)),
              "startTimeUnixNano": _weird(st.integers(0, 2 ** 64).map(str)),
              "endTimeUnixNano": _weird(st.integers(0, 2 ** 64).map(str)),
              "attributes": JSON_ATTRS, "status": _weird(st.fixed_dictionaries(
                  {"code": _weird(st.integers(-1, 4)), "message": _weird(TEXT)})),
              "events": _weird(st.lists(st.fixed_dictionaries({"name": _weird(TEXT), "attributes": JSON_ATTRS}),
                                        max_size=2))})
def _json_body(spans: list) -> bytes:
    # json, not orjson: integers beyond 64 bits are fair game for a hostile client
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "fuzz"}}]},
        "scopeSpans": [{"scope": {"name": "fuzz"}, "spans": spans}]}]}).encode("utf-8", "surrogatepass")


JSON_BODIES = (st.lists(JSON_SPANS, max_size=4).map(_json_body)
               | st.just(json_request([json_span()])).flatmap(mutated)
               | VALUES.map(lambda v: json.dumps(v).encode())
               | st.binary(max_size=100))


def _decode(convert, body: bytes) -> None:
    try:
        conversion = convert(body, project_id="fuzz")
    except InvalidRequest:
        return
    _lines_are_spans(conversion.lines + conversion.held_lines)


@FUZZ
@given(JSON_BODIES)
def test_the_otlp_json_decoder_decodes_or_refuses_and_writes_only_spans(body):
    _decode(from_json, body)


# --- OTLP/protobuf ---------------------------------------------------------------------------

def _proto_body(spans: list[tuple]) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for trace_id, span_id, parent, name, kind, start, end, code, attrs in spans:
        span = ss.spans.add(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name,
                            kind=kind, start_time_unix_nano=start, end_time_unix_nano=end)
        span.status.code = code
        for key, value in attrs:
            field = {str: "string_value", bool: "bool_value", int: "int_value", float: "double_value",
                     bytes: "bytes_value"}[type(value)]
            span.attributes.append(KeyValue(key=key, value=AnyValue(**{field: value})))
    return req.SerializeToString()


PROTO_VALUES = (st.text(max_size=20) | st.booleans() | st.integers(-(2 ** 63), 2 ** 63 - 1)
                | st.floats() | st.binary(max_size=8))
PROTO_SPANS = st.tuples(st.binary(max_size=20), st.binary(max_size=10), st.binary(max_size=10), TEXT,
                        st.integers(0, 9), st.integers(0, 2 ** 64 - 1), st.integers(0, 2 ** 64 - 1),
                        st.integers(0, 3), st.lists(st.tuples(st.sampled_from(KEYS) | TEXT, PROTO_VALUES),
                                                    max_size=5))
def _sdk_body() -> bytes:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return encode_spans(make_agent_spans()).SerializeToString()


PROTO_BODIES = (st.lists(PROTO_SPANS, max_size=4).map(_proto_body)
                | st.sampled_from([otlp_request(1, 3, attr_bytes=20)]).flatmap(mutated)
                | st.just(_sdk_body()).flatmap(mutated)
                | st.binary(max_size=200))


@FUZZ
@given(PROTO_BODIES)
def test_the_otlp_protobuf_decoder_decodes_or_refuses_and_writes_only_spans(body):
    _decode(from_protobuf, body)


# --- the HTTP endpoint -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def http_server(tmp_path_factory):
    with servers(tmp_path_factory.mktemp("fuzz") / "fuzz.jsonl", agent_wait=0) as s:
        yield s


@settings(parent=FUZZ, max_examples=max(EXAMPLES // 3, 20))
@given(st.one_of(JSON_BODIES.map(lambda b: ("application/json", b)),
                 PROTO_BODIES.map(lambda b: ("application/x-protobuf", b))))
def test_the_http_endpoint_answers_a_bad_body_with_a_4xx_never_a_5xx(http_server, case):
    content_type, body = case
    status, _, _ = post_http(http_server.http_url, body, content_type=content_type, timeout=30)
    assert status in (200, 400, 413, 415), status
