"""The offline stand-in model's `run_code` step: one computation across every trace.

A question like "median tokens of failed vs passed traces per model" needs
arithmetic over the whole dataset that no fixed trace tool gives. The stand-in
sends this program to `run_code` (the sandbox's `trace_rows()` returns every
trace's rollup in one call) and renders the table it returns, so the demo shows
the sandbox working without an API key.
"""

from __future__ import annotations

RUN_CODE = "run_code"

# Monty's Python subset: no `statistics`, so the median is written out.
PER_MODEL = """\
rows = trace_rows(fields=['has_errors', 'model_names', 'total_input_tokens', 'total_output_tokens'])

def median(values):
    values = sorted(values)
    n = len(values)
    if n == 0:
        return None
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2

groups = {}
for row in rows:
    tokens = row['total_input_tokens'] + row['total_output_tokens']
    for model in row['model_names'] or ['(no model)']:
        group = groups.setdefault(model, {'failed': [], 'passed': []})
        group['failed' if row['has_errors'] else 'passed'].append(tokens)
print(len(rows), 'traces,', len(groups), 'models')
[{'model': model, 'traces': len(g['failed']) + len(g['passed']), 'failed': len(g['failed']),
  'median_tokens_failed': median(g['failed']), 'median_tokens_passed': median(g['passed'])}
 for model, g in sorted(groups.items())]
"""


def render(result: dict | None) -> list[str]:
    """Markdown lines for the report from `run_code`'s result (empty when it was not run)."""
    if result is None:
        return []
    if "error" in result or not isinstance(result.get("value"), list):
        why = str(result.get("error") or "no table came back").splitlines()[0]
        return ["", f"Per-model figures: `run_code` could not compute them ({why[:200]})."]
    lines = ["", "Failures and median tokens (input + output) per model, computed across every trace "
             "in the sandbox with `run_code`:", "",
             "| model | traces | with errors | median tokens, with errors | median tokens, without |",
             "|---|---:|---:|---:|---:|"]
    for row in result["value"][:20]:
        if not isinstance(row, dict):
            continue
        traces, failed = row.get("traces") or 0, row.get("failed") or 0
        share = f" ({failed / traces:.0%})" if traces else ""
        lines.append(f"| `{row.get('model')}` | {traces} | {failed}{share} | "
                     f"{_number(row.get('median_tokens_failed'))} | {_number(row.get('median_tokens_passed'))} |")
    return lines


def _number(value) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if isinstance(value, (int, float)) else str(value)
