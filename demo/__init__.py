"""Runnable harnesses and a benchmark that show the loop (public API only).

- `demo.model_server`: an OpenAI-compatible server that plays a policy (tests, offline demo);
  `demo.model_process`: the same as a separate process.
- `demo.offline_policy`: the seeded offline model with harness-dependent failure modes.
- `demo.openai_agents_sdk`: the codebase-helper agent (`python -m demo.openai_agents_sdk`).
- `demo.benchmark`: the parallel benchmark (`python -m demo.benchmark`, `halo demo`).
"""
