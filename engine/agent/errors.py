"""Turn a failed agent run into one line a person can act on."""

from __future__ import annotations

from agents.exceptions import AgentsException, MaxTurnsExceeded, ModelRefusalError, UserError
from openai import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    NotFoundError,
    OpenAIError,
    PermissionDeniedError,
    RateLimitError,
)

from halo_live.engine.agent.config import AgentSettings
from halo_live.engine.agent.telemetry import TelemetryError
from halo_live.engine.store import ToolError

DEFAULT_ENDPOINT = "https://api.openai.com/v1"


class EmptyDatasetError(ValueError):
    """The dataset has no traces (yet): nothing to spend a model call on."""


def _endpoint(settings: AgentSettings) -> str:
    return settings.base_url or DEFAULT_ENDPOINT


def _message(exc: APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(exc.message or exc)


def describe_failure(exc: BaseException, settings: AgentSettings) -> str | None:
    """One line for an expected failure of the endpoint or the model; None if unexpected."""
    if isinstance(exc, (EmptyDatasetError, ToolError, TelemetryError)):
        return str(exc)
    where = _endpoint(settings)
    retries = f" (after {settings.max_retries} retries)" if settings.max_retries else ""
    if isinstance(exc, APITimeoutError):
        return f"the model endpoint {where} timed out{retries}"
    if isinstance(exc, APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f": {cause}" if cause else ""
        return f"cannot reach the model endpoint {where}{retries}{detail}"
    if isinstance(exc, AuthenticationError):
        return (f"the model endpoint {where} rejected the API key (HTTP 401): {_message(exc)}; "
                "check OPENAI_API_KEY or --api-key")
    if isinstance(exc, PermissionDeniedError):
        return f"the model endpoint {where} denied access (HTTP 403): {_message(exc)}"
    if isinstance(exc, NotFoundError):
        return (f"the model endpoint {where} answered 404 for model {settings.model!r}: "
                f"{_message(exc)}; check --model, --base-url and --api")
    if isinstance(exc, RateLimitError):
        return f"the model endpoint {where} kept rate-limiting{retries}: {_message(exc)}"
    if isinstance(exc, APIStatusError):
        return f"the model endpoint {where} answered HTTP {exc.status_code}{retries}: {_message(exc)}"
    if isinstance(exc, MaxTurnsExceeded):
        return f"the agent ran out of turns (--max-turns {settings.max_turns}) without an answer"
    if isinstance(exc, ModelRefusalError):
        return f"the model refused to answer: {exc.refusal}"
    if isinstance(exc, UserError):
        return f"agent setup error: {exc}"
    if isinstance(exc, AgentsException):
        return f"the model misbehaved{retries}: {type(exc).__name__}: {exc}"
    if isinstance(exc, OpenAIError):
        return f"model client error: {exc}"
    return None
