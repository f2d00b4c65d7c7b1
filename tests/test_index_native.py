"""The compiled scanner (indexer/_scan.c) against the pure-Python parse it replaces.

Both must give the same Batch for any bytes: the same lines, bad lines, rollups,
span entries and error lists. Lines the scanner is unsure of go to
`parse.normalize_line`; these tests feed both kinds, and random mutations of real
lines, through both paths.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import orjson
import pytest

from halo_live.exporter import canonical
from halo_live.indexer import parse
from tests._index_helpers import build, dump, odd_lines, span_line, write_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_scanner_is_built():
    # `pip install -e .` compiles it; without it the index is correct but several times slower.
    assert parse._scan is not None, "halo_live.indexer._scan is not built: pip install -e . needs a C compiler"
    assert parse.NATIVE


def as_dict(batch: parse.Batch) -> dict:
    out = {name: getattr(batch, name) for name in batch.__slots__ if name != "partials"}
    partials = []
    for p in batch.partials:
        p = list(p)
        sids, pids = orjson.loads(p[parse.P_IDS])  # sets: their order is free
        p[parse.P_IDS] = (sorted(sids), len(sids), sorted(pids), len(pids))
        partials.append(p)
    out["partials"] = partials
    return out


def assert_same(data: bytes, fileno: int = 2, base: int = 1000) -> parse.Batch:
    native = parse.parse_bytes(data, fileno, base)
    python = parse.parse_bytes_python(data, fileno, base)
    assert as_dict(native) == as_dict(python)
    return native


def line(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"  # json, not orjson: ints beyond 64 bits too


def span(**over) -> dict:
    base = {"trace_id": "t1", "span_id": "s1", "parent_span_id": "p1", "name": "step",
            "start_time": "2026-01-01T00:00:01.000000000Z", "end_time": "2026-01-01T00:00:02.000000000Z",
            "status": {"code": canonical.STATUS_ERROR, "message": "boom"},
            "resource": {"attributes": {canonical.SERVICE_NAME: "svc"}},
            "attributes": {canonical.INF_OBSERVATION_KIND: "LLM", canonical.INF_AGENT_NAME: "a"}}
    base.update(over)
    return base


def attrs(**kv) -> dict:
    return span(attributes=kv)


ODD_VALUES = [None, True, False, 0, 1, -3, 2.5, 0.0, "", "x", [], [1], {}, {"a": 1}, 2**63, 2**64 + 1]

KEYS = [canonical.INF_LLM_MODEL_NAME, canonical.OI_LLM_MODEL_NAME, canonical.INF_AGENT_NAME, canonical.INF_AGENT_ID, canonical.OI_AGENT_ID,
        canonical.INF_LLM_INPUT_TOKENS, canonical.INF_LLM_OUTPUT_TOKENS, canonical.INF_PROJECT_ID, canonical.OI_TOOL_NAME,
        canonical.GENAI_TOOL_NAME, canonical.INF_RUN_ID, canonical.OI_SPAN_KIND, canonical.INF_OBSERVATION_KIND,
        canonical.INF_LLM_COST_TOTAL]


def test_generated_traces_and_the_odd_lines_of_the_index_tests(tmp_path):
    path = write_dataset(tmp_path / "t.jsonl", traces=80, extra=odd_lines())
    batch = assert_same(path.read_bytes())
    assert batch.spans > 1000 and batch.bad_count == 0


@pytest.mark.parametrize("field", ["trace_id", "span_id", "parent_span_id", "name", "start_time",
                                   "end_time", "status", "resource", "attributes"])
def test_every_top_level_field_with_every_json_type(field):
    data = b"".join(line(span(**{field: value})) for value in ODD_VALUES)
    data += line({k: v for k, v in span().items() if k != field})  # and missing
    assert_same(data)


@pytest.mark.parametrize("key", KEYS)
def test_every_indexed_attribute_with_every_json_type(key):
    data = b"".join(line(attrs(**{key: value})) for value in ODD_VALUES)
    # an `a or b` pair: each falsy or odd first value, with a good second one
    data += b"".join(line(attrs(**{canonical.INF_LLM_MODEL_NAME: v, canonical.OI_LLM_MODEL_NAME: "m2",
                                   canonical.INF_AGENT_ID: v, canonical.OI_AGENT_ID: "id2",
                                   canonical.OI_TOOL_NAME: v, canonical.GENAI_TOOL_NAME: "tool2"}))
                     for v in ODD_VALUES)
    assert_same(data)


OUTCOME = {canonical.INF_OUTCOME_PASSED: True, canonical.GENAI_EVALUATION_SCORE_VALUE: 0.5,
           canonical.INF_OUTCOME_TASK_ID: "task", canonical.GENAI_EVALUATION_SCORE_LABEL: "ok"}
SCORES = [1.5e-7, -0.25, 1e300, 0.1, 3.0, -0.0, 12345678901234567890, 2**53 + 1]


@pytest.mark.parametrize("key", list(OUTCOME))
def test_every_outcome_attribute_with_every_json_type(key):
    # one trace per line: each line's outcome is its trace's latest
    values = ODD_VALUES + SCORES + ["pass", "\u00e9\n"]
    data = b"".join(line(span(trace_id=f"t{i}", attributes={**OUTCOME, key: v})) for i, v in enumerate(values))
    data += line(span(trace_id="unmarked", attributes={k: v for k, v in OUTCOME.items() if k != key}))
    batch = assert_same(data)
    if key == canonical.INF_OUTCOME_PASSED:
        assert [p[parse.P_OUTCOME][2] for p in batch.partials[:3]] == [None, True, False]


def test_outcome_numbers_as_json_spells_them():
    spelled = [b"1E2", b"-0", b"0.1e-5", b"1.7976931348623157e308", b"5e-324", b"1e-07", b"2.5E+10",
               b"123456789012345678", b"1234567890123456789", b"0.30000000000000004"]
    data = b"".join(b'{"trace_id": "t%d", "span_id": "s", "attributes": {"%s": true, "%s": %s}}\n'
                    % (i, canonical.INF_OUTCOME_PASSED.encode(), canonical.GENAI_EVALUATION_SCORE_VALUE.encode(), n)
                    for i, n in enumerate(spelled))
    batch = assert_same(data)
    assert [p[parse.P_OUTCOME][3] for p in batch.partials] == [float(orjson.loads(n)) for n in spelled]


def test_reported_costs_and_the_tokens_left_to_price():
    # costs as JSON spells numbers, odd values ignored; tokens of spans without a cost per model
    spelled = [b"0.25", b"1E-3", b"3", b"-0.5", b"1e-07", b"0.30000000000000004", b"123456789012345678",
               b"12345678901234567890", b'"0.5"', b"true", b"null", b"[1]"]
    cost, model = canonical.INF_LLM_COST_TOTAL.encode(), canonical.INF_LLM_MODEL_NAME.encode()
    tin, tout = canonical.INF_LLM_INPUT_TOKENS.encode(), canonical.INF_LLM_OUTPUT_TOKENS.encode()
    data = b"".join(b'{"trace_id": "t", "span_id": "s%d", "attributes": {"%s": "m%d", "%s": 10, "%s": %s}}\n'
                    % (i, model, i % 3, tin, cost, n) for i, n in enumerate(spelled))
    data += b"".join(b'{"trace_id": "t", "span_id": "u%d", "attributes": {%s}}\n' % (i, body) for i, body in enumerate([
        b'"%s": "m1", "%s": 5, "%s": 7' % (model, tin, tout),
        b'"%s": "m9", "%s": 18446744073709551615' % (model, tout),  # beyond int64: the callback
        b'"%s": 4' % tin,  # no model: counted under ""
        b'"%s": "m1"' % model,  # no tokens: nothing to price
    ]))
    [p] = assert_same(data).partials
    numbers = [float(orjson.loads(n)) for n in spelled[:7]] + [12345678901234567890.0]
    expected = 0.0
    for n in numbers:
        expected += n
    assert p[parse.P_COST] == expected
    assert p[parse.P_MODEL_TOKENS] == {"m0": [10, 0], "m1": [15, 7], "m2": [20, 0], "m9": [0, 2**64 - 1],
                                       "": [4, 0]}
    [plain] = assert_same(line(span())).partials
    assert plain[parse.P_COST] == 0.0 and plain[parse.P_MODEL_TOKENS] is None


def test_the_latest_outcome_of_a_trace_in_a_batch():
    times = ["2026-01-01T00:00:03Z", "", "2026-01-01T00:00:01Z", "2026-01-01T00:00:03Z", "z", "\u00e9"]
    data = [line(span(span_id=f"s{i}", end_time=t, attributes={**OUTCOME, canonical.INF_OUTCOME_TASK_ID: f"k{i}"}))
            for i, t in enumerate(times)]
    plain = line(span(span_id="plain", end_time="\uffff"))  # a later span that is no outcome changes nothing
    latest = {4: "k3", 5: "k4", 6: "k5"}  # a tie goes to the later line; "\u00e9" sorts after "z"
    for n, task in latest.items():
        [p] = assert_same(b"".join(data[:n]) + plain).partials
        assert p[parse.P_OUTCOME][4] == task


def test_status_and_resource_shapes():
    shapes = [
        {"status": {"code": canonical.STATUS_ERROR}},
        {"status": {"code": canonical.STATUS_ERROR, "message": None}},
        {"status": {"code": canonical.STATUS_ERROR, "message": 7}},
        {"status": {"code": canonical.STATUS_ERROR, "message": ["x"]}},
        {"status": {"code": canonical.STATUS_OK, "message": "ignored"}},
        {"status": {"code": "SOMETHING_ELSE"}},
        {"status": {"code": ""}},
        {"status": {"code": 2}},
        {"status": {}},
        {"resource": {"attributes": {canonical.SERVICE_NAME: ""}}},
        {"resource": {"attributes": {canonical.SERVICE_NAME: 5}}},
        {"resource": {"attributes": []}},
        {"resource": {}},
        {"status": {"code": canonical.STATUS_ERROR}, "attributes": {canonical.OI_SPAN_KIND: "TOOL"}},
        {"status": {"code": canonical.STATUS_ERROR}, "attributes": {canonical.OI_SPAN_KIND: "tool"}},
    ]
    assert_same(b"".join(line(span(**shape)) for shape in shapes))


RAW = [
    b"",                                   # an empty line: skipped, not counted
    b"   ",                                # blanks only: a bad line
    b"\r",
    b"not json",
    b"[1, 2]",
    b'"a string"',
    b"{}",
    b'{"trace_id": "t", "span_id": "s"}',  # the least span there is
    b'  {"trace_id": "t", "span_id": "s2"}  \r',
    b'{"trace_id": "t", "span_id": "s3"} trailing',
    b'{"trace_id": "t", "span_id": "s4",}',
    b'{"trace_id": "t" "span_id": "s5"}',
    b'{"trace_id": "t", "span_id": "s6"',
    b'\xef\xbb\xbf{"trace_id": "t", "span_id": "bom"}',
    b'{"trace_id": "t", "span_id": "s7", "x": 01}',
    b'{"trace_id": "t", "span_id": "s8", "x": 1.}',
    b'{"trace_id": "t", "span_id": "s9", "x": 1e400}',
    b'{"trace_id": "t", "span_id": "s10", "x": 1e-400}',
    b'{"trace_id": "t", "span_id": "s11", "x": -0, "y": 1E+2, "z": -1.5e-3}',
    b'{"trace_id": "t", "span_id": "s12", "x": ' + b"9" * 400 + b"}",
    b'{"trace_id": "t", "span_id": "s13", "x": NaN}',
    b'{"trace_id": "t", "span_id": "s14", "x": tru}',
    b'{"trace_id": "t", "span_id": "s15", "x": "\\ud800"}',            # lone high surrogate
    b'{"trace_id": "t", "span_id": "s16", "x": "\\udc00"}',            # lone low surrogate
    b'{"trace_id": "t", "span_id": "s17", "name": "\\ud83d\\ude00 \\u00e9\\n\\"q\\" \\/ \\u0000"}',
    b'{"trace_id": "t", "span_id": "s18", "x": "\\q"}',
    b'{"trace_id": "t", "span_id": "s19", "x": "\\u12G4"}',
    b'{"trace_id": "t", "span_id": "s20", "x": "a\tb"}',               # a raw tab in a string
    b'{"trace_id": "t", "span_id": "s21", "x": "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"}',
    b'{"trace_id": "t", "span_id": "s22", "x": "\xc0\x80"}',           # overlong
    b'{"trace_id": "t", "span_id": "s23", "x": "\xed\xa0\x80"}',       # an encoded surrogate
    b'{"trace_id": "t", "span_id": "s24", "x": "\xf4\x90\x80\x80"}',   # beyond U+10FFFF
    b'{"trace_id": "t", "span_id": "s25", "x": "\xe2\x82"}',           # cut short
    b'{"trace_id": "t", "span_id": "s26", "x": "\xff"}',
    b'{"trace\\u005fid": "t-escaped-key", "span_id": "s27"}',
    b'{"trace_id": "t", "span_id": "s28", "attributes": {"inference.agent\\u005fname": "esc"}}',
    b'{"trace_id": "t", "trace_id": "t-last", "span_id": "s29"}',        # repeated keys: last wins
    b'{"trace_id": "t", "span_id": "s30", "status": {"code": "STATUS_CODE_ERROR"}, "status": 5}',
    b'{"trace_id": "t", "span_id": "s31", "attributes": {"inference.agent_name": "a"}, "attributes": []}',
    b'{"trace_id": "t", "span_id": "s32", "attributes": {"inference.agent_name": "a", '
    b'"inference.agent_name": 3}}',
    b'{"trace_id": "t", "span_id": "s33", "resource": {"attributes": {"service.name": "a"}, '
    b'"attributes": {}}}',
    b'{"trace_id": "t", "span_id": "s34", "name": 5, "name": "five"}',
    b'{"trace_id": "t", "span_id": "s35", "x": ' + b"[" * 300 + b"]" * 300 + b"}",
    b'{"trace_id": "t", "span_id": "s36", "x": ' + b"[" * 1100 + b"]" * 1100 + b"}",
    b'{"trace_id": "t", "span_id": "s37", "x": {"a": [1, {"b": null}], "c": "\\\\"}}',
    b'{"trace_id": "t", "span_id": "s38", "start_time": "\xc3\xa9", "end_time": "\\u00e9"}',
    b'{"trace_id": "t", "span_id": "s39", "start_time": "", "end_time": ""}',
    b'{"trace_id": "\xc3\xbcber", "span_id": "s40"}',
    b'{"trace_id": "t", "span_id": "s41", "x": 1}\x00',
    b'{"trace_id": "t", "span_id": "s42", "attributes": {"inference.llm.input_tokens": '
    b'9223372036854775807}}',
    b'{"trace_id": "t", "span_id": "s43", "attributes": {"inference.llm.input_tokens": '
    b'9223372036854775807}}',                                            # the sum leaves int64
    b'{"trace_id": "t", "span_id": "s44", "attributes": {"inference.llm.input_tokens": '
    b'-9223372036854775808}}',
    b'{"trace_id": "t", "span_id": "s45", "attributes": {"inference.llm.input_tokens": '
    b'18446744073709551615}}',
    b'{"trace_id": "t", "span_id": "s46", "attributes": {"inference.llm.input_tokens": '
    b'99999999999999999999999}}',
    b'{"trace_id": "t", "span_id": "s47", "attributes": {"inference.llm.input_tokens": '
    b'123456789012345678}}',
]


def test_raw_lines_valid_and_not():
    batch = assert_same(b"\n".join(RAW) + b"\n")
    assert batch.bad_count > 20 and batch.spans > 20


def test_each_raw_line_alone_and_a_partial_last_line():
    for raw in RAW:
        assert_same(raw + b"\n")
        assert_same(raw)  # no newline: nothing is parsed
    assert_same(b"\n".join(RAW[7:12]) + b"\n" + RAW[12][:10])


def test_start_and_end_bounds_follow_python_string_order():
    times = ["2026-01-01T00:00:03Z", "", "2026-01-01T00:00:01Z", "\u00e9", "2026-01-01T00:00:02Z",
             "2026-01-01T00:00:01", "\U0001f600", "z"]
    data = b"".join(line(span(span_id=f"s{i}", start_time=a, end_time=b))
                    for i, a in enumerate(times) for b in times)
    assert_same(data)


def test_span_and_parent_ids_are_distinct_and_in_code_point_order():
    # The scanner sorts ids on their first sixteen bytes as two words, then by length or
    # bytes: ids around those lengths, with NUL, non-ASCII and escapes, hundreds to a trace.
    rng = random.Random(7)
    alphabet = ["0", "9", "a", "f", "\x00", "\x01", "\u00e9", "\u20ac", "\U0001f600", '"', "\\", "\x7f"]
    ids = ["", "a", "a\x00", "a\x00\x00"] + [
        "".join(rng.choice(alphabet) for _ in range(rng.choice([1, 7, 8, 9, 15, 16, 17, 24, 33])))
        for _ in range(600)]
    ids += [i + "\x00" for i in ids[:50]] + ids[:100]  # prefixes of each other, and repeats
    data = b"".join(line(span(span_id=f"{sid}#{n}", parent_span_id=rng.choice(ids)))
                    for n, sid in enumerate(ids))
    batch = assert_same(data)
    (p,) = batch.partials
    sids, pids = orjson.loads(p[parse.P_IDS])
    assert sids == sorted(set(sids)) and len(sids) == len(ids)
    assert pids == sorted(set(pids)) and 100 < len(pids) < len(ids)


def test_durations_of_canonical_times_and_of_any_other():
    # The scanner works out a canonical time itself and calls duration_ms for the rest: the
    # two must agree to the bit, at the edges of the calendar and of the quick reading.
    times = ["2026-01-01T00:00:00.000000000Z", "2026-01-01T00:00:00.000000001Z", "2026-12-31T23:59:59.999999999Z",
             "1970-01-01T00:00:00.000000000Z", "1969-12-31T23:59:59.500000000Z", "0001-01-01T00:00:00.000000000Z",
             "9999-12-31T23:59:59.999999999Z", "2000-02-29T12:00:00.000000000Z", "1900-02-29T12:00:00.000000000Z",
             "2024-02-29T00:00:00.123456789Z", "2023-02-29T00:00:00.000000000Z", "2026-04-31T00:00:00.000000000Z",
             "0000-01-01T00:00:00.000000000Z", "2026-00-10T00:00:00.000000000Z", "2026-13-10T00:00:00.000000000Z",
             "2026-01-01T24:00:00.000000000Z", "2026-01-01T23:60:00.000000000Z", "2026-01-01T23:59:60.000000000Z",
             "2026-01-01 00:00:00.000000000Z", "2026-01-01T00:00:00.0000000001Z", "2026-01-01T00:00:00.00000000Z",
             "2026-01-01T00:00:00.1_2345678Z", "2026-01-01T00:00:00.+12345678Z", "2026-01-01T00:00:00.\u0661\u0662345678Z",
             "2026-01-01T00:00:00.000000000", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.5Z", "", "x", "\u00e9"]
    rng = random.Random(3)
    for _ in range(300):
        times.append("%04d-%02d-%02dT%02d:%02d:%02d.%09dZ" % (
            rng.choice([1, 1600, 1969, 1970, 2026, 2262, 2263, 9999, rng.randrange(1, 10000)]), rng.randrange(1, 13),
            rng.randrange(1, 32), rng.randrange(24), rng.randrange(60), rng.randrange(60), rng.randrange(10**9)))
    pairs = [(a, b) for a in times[:30] for b in times[:30]] + [(rng.choice(times), rng.choice(times)) for _ in range(3000)]
    data = b"".join(line(span(trace_id=f"t{i}", start_time=a, end_time=b)) for i, (a, b) in enumerate(pairs))
    batch = assert_same(data)
    for p in batch.partials:
        assert p[parse.P_DURATION] == parse.duration_ms(p[parse.P_START], p[parse.P_END])
        assert repr(p[parse.P_DURATION]) == repr(parse.duration_ms(p[parse.P_START], p[parse.P_END]))


def test_many_traces_in_one_batch_and_first_appearance_order():
    rng = random.Random(5)
    lines = [span_line(f"trace-{rng.randrange(3000)}", f"s{i}", f"s{i - 1}" if i % 4 else "")
             for i in range(20_000)]
    batch = assert_same(b"".join(lines))
    assert len(batch.partials) > 2000


def test_bad_line_offsets_are_capped_but_counted():
    data = b"junk\n" * (parse.MAX_BAD_RECORDED + 50)
    batch = assert_same(data)
    assert batch.bad_count == parse.MAX_BAD_RECORDED + 50
    assert len(batch.bad) == parse.MAX_BAD_RECORDED


def test_random_mutations_of_real_lines(tmp_path):
    # A cheap fuzzer: flip, drop, insert and repeat bytes in generated span lines.
    outcomes = [line(span(trace_id=f"o{i}", attributes={**OUTCOME, canonical.GENAI_EVALUATION_SCORE_VALUE: v}))
                for i, v in enumerate([0.75, 1, "x"])]
    source = write_dataset(tmp_path / "t.jsonl", traces=6, extra=odd_lines() + outcomes).read_bytes().splitlines()
    alphabet = b'{}[]",:\\ 0123456789.eE+-tfnul\x00\x1f\x7f\x80\xc3\xa9\xed\xf0\xff\r'
    rng = random.Random(11)
    for _ in range(40):
        lines = []
        for _ in range(60):
            raw = bytearray(rng.choice(source))
            for _ in range(rng.randrange(1, 4)):
                at = rng.randrange(len(raw))
                op = rng.randrange(4)
                if op == 0:
                    raw[at] = rng.choice(alphabet)
                elif op == 1:
                    del raw[at:at + rng.randrange(1, 8)]
                elif op == 2:
                    raw[at:at] = bytes([rng.choice(alphabet)])
                else:
                    raw[at:at] = raw[at:at + rng.randrange(1, 30)]
            lines.append(bytes(raw).replace(b"\n", b""))
        assert_same(b"\n".join(lines) + b"\n")


# Builds an index in a fresh process and says which parser built it.
_BUILD_AND_SAY = """
import sys
from halo_live.indexer import TraceIndex, parse
with TraceIndex.open(sys.argv[1], sys.argv[2]) as idx:
    idx.catch_up()
print(parse.parser_name())
"""


def test_an_index_built_by_either_parser_is_the_same(tmp_path):
    path = write_dataset(tmp_path / "t.jsonl", traces=120, extra=odd_lines() + [b"junk\n"] + RAW[7:20])
    built_by = {}
    for name, native in (("python", "0"), ("native", "1")):
        env = dict(os.environ, HALO_INDEX_NATIVE=native)
        done = subprocess.run([sys.executable, "-c", _BUILD_AND_SAY, str(path), str(tmp_path / name)],
                              env=env, check=True, capture_output=True, text=True)
        built_by[name] = done.stdout.strip()
    assert built_by == {"python": "pure Python (HALO_INDEX_NATIVE=0)", "native": "compiled"}
    with build(path, tmp_path / "python") as pure, build(path, tmp_path / "native") as native:
        assert dump(native) == dump(pure)


def test_version_says_which_parser_is_in_use():
    for native, expected in (("1", "(span parser: compiled)"),
                             ("0", "(span parser: pure Python (HALO_INDEX_NATIVE=0))")):
        env = dict(os.environ, HALO_INDEX_NATIVE=native)
        for argv in (["--version"], ["--help"]):
            done = subprocess.run([sys.executable, "-m", "halo_live", *argv], env=env,
                                  capture_output=True, text=True, check=True)
            assert expected in done.stdout, (argv, done.stdout)


@pytest.mark.slow
def test_a_long_pure_python_build_says_so_once(tmp_path):
    from halo_live.engine.cli import progress

    path = write_dataset(tmp_path / "big.jsonl", traces=1100)
    assert path.stat().st_size >= progress._BAR_MIN_BYTES
    env = dict(os.environ, HALO_INDEX_NATIVE="0")
    done = subprocess.run([sys.executable, "-m", "halo_live", "index", str(path)], env=env,
                          capture_output=True, text=True, check=True)
    assert done.stderr.count("pure-Python span parser") == 1, done.stderr
    assert "HALO_INDEX_NATIVE=0" in done.stderr and "reinstall halo-live" in done.stderr
    quick = subprocess.run([sys.executable, "-m", "halo_live", "index", str(path)],
                           capture_output=True, text=True, check=True)
    assert "pure-Python" not in quick.stderr  # compiled, and nothing left to index anyway


def test_a_callback_that_breaks_its_contract_raises_cleanly():
    # normalize_line keeps the contract; this holds the C side to checking it anyway.
    from halo_live.indexer import _scan

    good = parse.normalize_line(span_line("t", "s"))

    def broken(**at):
        fields = list(good)
        for i, v in at.items():
            fields[int(i[1:])] = v
        return lambda line: tuple(fields)

    class Falsy:
        def __bool__(self):
            raise RuntimeError("no truth")

    cases = [(lambda line: ("too", "short"), TypeError), (lambda line: 7, TypeError),
             (broken(i6=2**100), OverflowError), (broken(i6=9), ValueError),
             (broken(i7=Falsy()), RuntimeError), (broken(i7=True, i9=None), ValueError),
             (broken(i0=5), TypeError), (broken(i16="many"), TypeError),
             (broken(i21=(True, 1.0)), TypeError), (broken(i21="x"), TypeError),
             (broken(i21=(True, "1.0", None, None)), TypeError), (broken(i21=(True, None, 5, None)), TypeError)]
    for fallback, error in cases:
        with pytest.raises(error):
            _scan.scan(b"not json\n", 0, 0, fallback, 10, parse.duration_ms)
    with pytest.raises(ZeroDivisionError):
        _scan.scan(b"not json\n", 0, 0, lambda line: 1 / 0, 10, parse.duration_ms)
