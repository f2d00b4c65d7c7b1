"""Grades given after the fact, appended to the traces as outcome spans (`halo annotate`).

    grades = read_grades("grades.jsonl")         # GradesError lists every malformed row
    plan = plan_outcomes(index, grades)          # which traces each row names; unknown ids
    write_outcomes(plan)                         # appends, one write per file, never rewrites

A grade names a trace (`trace_id`) or a task (`task_id`, matched against the task
ids of the traces' recorded outcomes, so every trace of that task is graded) and
gives `passed`, `score`, `label` and `explanation` as available. Each becomes one
outcome span, a child of the trace's root, with the trace's own resource (service,
run) and its end time, so the trace's counts grow by one span but its services,
runs, times and duration stay as they were. It is appended to the file holding the
trace; being later in the file at the same time, it wins over the outcomes before it,
so annotating twice leaves one outcome per trace.
"""

from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from halo_live.exporter import canonical
from halo_live.exporter.writer import JsonlWriter
from halo_live.indexer import IndexFilters, TraceIndex

FIELDS = ("trace_id", "task_id", "passed", "score", "label", "explanation")
SCOPE_NAME = "halo-annotate"
_TRUE = {"true", "1", "yes", "y", "pass", "passed"}
_FALSE = {"false", "0", "no", "n", "fail", "failed"}


class GradesError(ValueError):
    """The grades cannot be used as they are; `problems` holds (line number, what is wrong)."""

    def __init__(self, path: str, problems: list[tuple[int, str]]) -> None:
        self.path, self.problems = path, problems
        shown = "; ".join(f"line {n}: {what}" for n, what in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{path}: {len(problems)} malformed row(s), nothing written: {shown}{more}")


@dataclass(frozen=True)
class Grade:
    """One row of a grader's output."""

    line: int
    trace_id: str | None
    task_id: str | None
    passed: bool | None
    score: float | None
    label: str | None
    explanation: str | None


@dataclass
class Plan:
    """What `write_outcomes` appends: encoded lines per file, and what could not be matched."""

    lines: dict[Path, list[bytes]] = field(default_factory=dict)
    traces: list[str] = field(default_factory=list)  # graded trace ids, in row order
    unknown: list[str] = field(default_factory=list)  # ids no trace carries, in row order
    rows: int = 0

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.lines.values())


# --- reading -----------------------------------------------------------------------------


def read_grades(path: str | os.PathLike[str]) -> list[Grade]:
    """Every row of a JSONL or CSV grades file (CSV by a `.csv` suffix, else sniffed from the
    first line); raises `GradesError` naming every malformed row, `OSError` if unreadable."""
    text = Path(path).read_text(encoding="utf-8-sig")
    first = next((line for line in text.splitlines() if line.strip()), "")
    is_csv = str(path).lower().endswith(".csv") or (first and not first.lstrip().startswith("{"))
    grades, problems = [], []
    for number, row in (_csv_rows(text) if is_csv else _jsonl_rows(text)):
        try:
            grades.append(_grade(number, row))
        except ValueError as exc:
            problems.append((number, str(exc)))
    if problems:
        raise GradesError(str(path), problems)
    return grades


def _jsonl_rows(text: str):
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield number, "not JSON"
            continue
        yield number, row if isinstance(row, dict) else "not a JSON object"


def _csv_rows(text: str):
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"trace_id", "task_id"} & {f.strip() for f in reader.fieldnames}:
        yield 1, "the CSV header names neither trace_id nor task_id"
        return
    for row in reader:
        cells = {(k or "").strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        yield reader.line_num, {k: v for k, v in cells.items() if v not in ("", None)}


def _grade(number: int, row: Any) -> Grade:
    if isinstance(row, str):
        raise ValueError(row)
    trace_id, task_id = _text(row.get("trace_id")), _text(row.get("task_id"))
    if trace_id is None and task_id is None:
        raise ValueError("no trace_id or task_id")
    passed, score = _passed(row.get("passed")), _score(row.get("score"))
    label, explanation = _text(row.get("label")), _text(row.get("explanation"))
    if passed is None and score is None and label is None:
        raise ValueError("no passed, score or label to record")
    return Grade(number, trace_id, task_id, passed, score, label, explanation)


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _passed(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"passed {value!r} is not true or false")


def _score(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"score {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"score {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"score {value!r} is not a finite number")
    return number


# --- matching and writing ------------------------------------------------------------------


def plan_outcomes(index: TraceIndex, grades: list[Grade], *, run_id: str | None = None,
                  name: str | None = None) -> Plan:
    """Catch the index up, then build the outcome line of every trace each grade names.

    `run_id` narrows task ids to one run's traces (a file holding several runs);
    `name` is the evaluation's name (default "task_outcome").
    """
    index.catch_up()
    plan = Plan(rows=len(grades))
    runs = [run_id] if run_id else None
    with index.snapshot() as snap:
        for grade in grades:
            targets = _targets(snap, grade, runs)
            if not targets:
                plan.unknown.append(grade.trace_id or grade.task_id or "")
            for tid in targets:
                path, line = _outcome_line(snap, index, tid, grade, name)
                plan.lines.setdefault(path, []).append(line)
                plan.traces.append(tid)
    return plan


def _targets(snap: Any, grade: Grade, runs: list[str] | None) -> list[str]:
    if grade.trace_id is not None:
        for tid in (grade.trace_id, grade.trace_id.removeprefix("trace_")):  # an Agents SDK id too
            if snap.trace(tid) is not None:
                return [tid]
        return []
    return snap.trace_ids(IndexFilters(task_ids=[grade.task_id], run_ids=runs))


def _outcome_line(snap: Any, index: TraceIndex, trace_id: str, grade: Grade,
                  name: str | None) -> tuple[Path, bytes]:
    row = snap.trace(trace_id)
    refs = snap.spans(trace_id)
    root = next((r for r in refs if not r.parent_span_id), refs[0])
    try:
        first = orjson.loads(snap.read_span(refs[0]))
        resource = first[canonical.RESOURCE][canonical.ATTRIBUTES]
        resource = resource if isinstance(resource, dict) else {}
    except (OSError, KeyError, TypeError, orjson.JSONDecodeError):
        resource = {}
    task_id = grade.task_id or (row.outcome.task_id if row.outcome is not None else None)
    attrs = canonical.outcome_attributes(passed=grade.passed, score=grade.score, task_id=task_id,
                                         label=grade.label, explanation=grade.explanation, name=name)
    attrs[canonical.OI_SPAN_KIND] = canonical.OI_KIND_EVALUATOR
    attrs.update(canonical.project(attrs, project_id=row.project_id or "", resource_attrs=resource))
    at = row.end_time or canonical.iso_from_ns(time.time_ns())
    line = canonical.canonical_line(
        trace_id=trace_id, span_id=os.urandom(8).hex(), parent_span_id=root.span_id,
        name=canonical.EVALUATION_RESULT, kind=canonical.SPAN_KIND_INTERNAL, start_time=at, end_time=at,
        status_code=canonical.STATUS_UNSET, status_message="", resource_attributes=resource,
        scope_name=SCOPE_NAME, scope_version="", attributes=attrs)
    return index.dataset.path_of(row.file), canonical.encode_line(line)


def write_outcomes(plan: Plan) -> int:
    """Append the plan's lines, each file's in one write under its lock; returns lines written.

    Raises `OSError` when a file could not take its lines (whole lines are never torn).
    """
    written = 0
    for path, lines in plan.lines.items():
        writer = JsonlWriter(path, fsync="batch", max_queue_lines=max(1, len(lines)))
        try:
            writer.submit(lines)
        finally:
            writer.shutdown()
        if writer.dropped:
            raise OSError(f"could not append {writer.dropped} outcome line(s) to {path}")
        written += writer.lines_written
    return written
