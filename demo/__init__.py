"""Runnable harnesses and a benchmark that show the loop (public API only).

- `halo_live.demo.model_server`: an OpenAI-compatible server that plays a policy (tests, offline demo);
  `halo_live.demo.model_process`: the same as a separate process.
- `halo_live.demo.offline_policy`: the seeded offline model with harness-dependent failure modes.
- `halo_live.demo.openai_agents_sdk`: the codebase-helper agent (`python -m halo_live.demo.openai_agents_sdk`).
- `halo_live.demo.benchmark`: the parallel benchmark (`python -m halo_live.demo.benchmark`, `halo demo`).
"""
