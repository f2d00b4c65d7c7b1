"""The diagnostic agent on the OpenAI Agents SDK (`halo TRACE_PATH -p`).

    from halo_live.engine.agent.ask import AgentSettings, ask

`ask` builds the root agent (`ask.py`) with the agent-side tools (`tools.py`:
the registry's trace tools, synthesis, final answer; `code_tools.py`: the code
and git tools; `subagents.py`: `call_subagent`), all wrapped by
`function_tool.py`, and runs it with retries and compaction (`runner.py`,
`compaction.py`) under the settings of `config.py`; `display.py` prints the
steps, `telemetry.py` traces the engine's own run, `errors.py` turns endpoint
failures into one line.
"""
