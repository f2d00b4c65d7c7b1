"""Settings of one diagnostic-agent run, and how they become SDK model settings.

Defaults follow halo-engine 0.3.5's CLI (`--model gpt-5.4-mini`,
`--max-depth 2`, `--max-turns 20`, `--max-parallel 10`); the additions
(API mode, retries, the compaction threshold) have defaults that behave like
the reference where it has an opinion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlparse

if TYPE_CHECKING:  # the SDK is imported where it is used: `halo --help` stays fast
    from agents import ModelSettings
    from agents.retry import ModelRetrySettings

DEFAULT_MODEL = "gpt-5.4-mini"
DEFAULT_MAX_DEPTH = 2
DEFAULT_MAX_TURNS = 20
DEFAULT_MAX_PARALLEL = 10
DEFAULT_MAX_RETRIES = 4
# ~100k tokens of input: fits every current 128k-context model with room for the reply.
DEFAULT_COMPACTION_THRESHOLD_CHARS = 400_000
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
API_MODES = ("auto", "responses", "chat")
OPENAI_HOST = "api.openai.com"
# Statuses worth another attempt: timeouts, conflicts, rate limits, provider faults.
RETRY_STATUSES = (408, 409, 429, 500, 502, 503, 504)

ApiMode = Literal["auto", "responses", "chat"]


@dataclass
class AgentSettings:
    """Everything `halo TRACE_PATH -p` can tune; one object passed down, no globals."""

    model: str = DEFAULT_MODEL
    synthesis_model: str | None = None  # None: the agent's model
    compaction_model: str | None = None  # None: the agent's model
    max_depth: int = DEFAULT_MAX_DEPTH
    max_turns: int = DEFAULT_MAX_TURNS
    max_parallel: int = DEFAULT_MAX_PARALLEL
    temperature: float | None = None
    max_output_tokens: int | None = None
    reasoning_effort: str | None = None
    parallel_tool_calls: bool = True
    refusal_retries: int = 0
    api: ApiMode = "auto"
    base_url: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    max_retries: int = DEFAULT_MAX_RETRIES
    compaction_threshold_chars: int = DEFAULT_COMPACTION_THRESHOLD_CHARS
    stream: bool = True
    # A source checkout of the traced harness: enables the read-only code (and git) tools.
    repo_path: str | None = None
    # `run_code`: model-written Python in the sandbox over the whole dataset.
    run_code: bool = True
    # What the dataset's files encode, in the caller's words; the prompt carries it.
    dataset_context: str | None = None

    def __post_init__(self) -> None:
        if self.max_depth < 0:
            raise ValueError(f"max_depth must be >= 0, got {self.max_depth}")
        if self.max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {self.max_turns}")
        if self.max_parallel < 1:
            raise ValueError(f"max_parallel must be >= 1, got {self.max_parallel}")
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be within 0..2, got {self.temperature}")
        if self.max_output_tokens is not None and self.max_output_tokens < 1:
            raise ValueError(f"max_output_tokens must be >= 1, got {self.max_output_tokens}")
        if self.reasoning_effort is not None and self.reasoning_effort not in REASONING_EFFORTS:
            raise ValueError(
                f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}, "
                f"got {self.reasoning_effort!r}"
            )
        if self.api not in API_MODES:
            raise ValueError(f"api must be one of {', '.join(API_MODES)}, got {self.api!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.repo_path is not None and not str(self.repo_path).strip():
            raise ValueError("repo_path is empty; give a folder or None")
        if self.dataset_context is not None and not str(self.dataset_context).strip():
            raise ValueError("dataset_context is empty; give a description or None")
        if self.compaction_threshold_chars < 1_000:
            raise ValueError(
                f"compaction_threshold_chars must be >= 1000, got {self.compaction_threshold_chars}"
            )

    def model_for(self, role: str) -> str:
        """The model of a call role: "agent", "synthesis" or "compaction" (else the agent's)."""
        chosen = {"synthesis": self.synthesis_model, "compaction": self.compaction_model}.get(role)
        return chosen or self.model

    def uses_responses_api(self) -> bool:
        """Responses on OpenAI's own endpoint (the reference's choice); Chat Completions
        elsewhere, the one surface every OpenAI-compatible server speaks."""
        if self.api != "auto":
            return self.api == "responses"
        if not self.base_url:
            return True
        return (urlparse(self.base_url).hostname or "") == OPENAI_HOST


def max_reasoning_effort_for_model(name: str) -> str | None:
    """The reference's default effort: the family's documented maximum, None for the rest."""
    n = name.lower()
    if n.startswith(("gpt-5.4", "gpt-5.5", "gpt-5.1-codex-max")):
        return "xhigh"
    if n.startswith(("gpt-5", "o1", "o3", "o4")):
        return "high"
    return None


def retry_settings(settings: AgentSettings) -> ModelRetrySettings | None:
    """Runner-managed retries of each model call, on top of the client's own."""
    from agents.retry import ModelRetrySettings, retry_policies

    if settings.max_retries <= 0:
        return ModelRetrySettings(max_retries=0)
    policy = retry_policies.any(
        retry_policies.provider_suggested(),
        retry_policies.network_error(),
        retry_policies.retry_after(),
        retry_policies.http_status(RETRY_STATUSES),
    )
    return ModelRetrySettings(
        max_retries=settings.max_retries,
        backoff={"initial_delay": 0.5, "max_delay": 30.0, "multiplier": 2.0, "jitter": True},
        policy=policy,
    )


def model_settings(settings: AgentSettings, *, role: str = "agent") -> ModelSettings:
    """SDK settings for an agent call (`role="agent"`) or a summarizer call.

    Summarizers (synthesis, compaction) never get the reasoning effort meant
    for the agents, as in the reference; they use their model's own default.
    """
    model = settings.model_for(role)
    from agents import ModelSettings
    from openai.types.shared import Reasoning

    effort = settings.reasoning_effort if role == "agent" else None
    effort = effort or max_reasoning_effort_for_model(model)
    return ModelSettings(
        temperature=settings.temperature,
        max_tokens=settings.max_output_tokens,
        parallel_tool_calls=settings.parallel_tool_calls if role == "agent" else None,
        reasoning=Reasoning(effort=effort) if effort is not None else None,  # type: ignore[arg-type]
        retry=retry_settings(settings),
        # Token counts of streamed Chat Completions (the SDK asks only OpenAI's own endpoint).
        include_usage=True,
    )
