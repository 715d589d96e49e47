"""Where an LLM endpoint is and how to talk to it, from code, a config mapping or the environment.

The API key is a `SecretStr`: it never shows in a repr, a log line or a recorded request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from swarm.errors import ConfigError

__all__ = ["EndpointConfig", "redact_url"]

ENV_PREFIX = "SWARM_LLM_"


class EndpointConfig(BaseModel):
    """One OpenAI-compatible endpoint. `base_url` is the part before `/chat/completions`.

    ```python
    EndpointConfig(base_url="http://127.0.0.1:8080/v1", model="smollm2")
    EndpointConfig(base_url="https://api.example.com/v1", api_key_env="EXAMPLE_API_KEY")
    ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    model: str = "default"
    """Used when a call names no model."""
    models: list[str] = Field(default_factory=list)
    """Other model names this endpoint serves, for routing among several endpoints."""
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    """The environment variable holding the key: config files name it instead of holding it."""
    timeout: float = Field(60.0, gt=0)
    """Seconds for one attempt of a call (between chunks, for a stream); a call may override."""
    connect_timeout: float = Field(10.0, gt=0)
    max_retries: int = Field(3, ge=0)
    backoff_base: float = Field(0.5, ge=0)
    backoff_cap: float = Field(20.0, ge=0)
    max_retry_after: float = Field(60.0, ge=0)
    """A longer Retry-After than this fails the call instead of stalling it."""
    max_concurrency: int = Field(16, ge=1)
    """Requests in flight to this endpoint at once; more wait for a slot."""
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = redact_url(value)
            raise ValueError(f"base_url must be an http(s) URL with a host, got {shown!r}")
        return value.rstrip("/")

    def key(self) -> str | None:
        """The API key: given directly, else read from `api_key_env` at call time."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        return None

    @property
    def safe_url(self) -> str:
        return redact_url(self.base_url)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "config") -> EndpointConfig:
        """Build from a config file's section; errors name the field and where it came from."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"bad LLM endpoint in {source}: {problems}") from None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, prefix: str = ENV_PREFIX
    ) -> EndpointConfig:
        """Read `SWARM_LLM_BASE_URL`, `_MODEL`, `_API_KEY`, `_TIMEOUT`, `_MAX_RETRIES`,
        `_MAX_CONCURRENCY`. `OPENAI_API_KEY` is used when `SWARM_LLM_API_KEY` is unset."""
        env = os.environ if environ is None else environ
        base_url = env.get(prefix + "BASE_URL")
        if not base_url:
            raise ConfigError(f"no LLM endpoint configured: set {prefix}BASE_URL")
        data: dict[str, Any] = {"base_url": base_url}
        fields = {
            "MODEL": "model",
            "TIMEOUT": "timeout",
            "MAX_RETRIES": "max_retries",
            "MAX_CONCURRENCY": "max_concurrency",
        }
        for suffix, name in fields.items():
            if env.get(prefix + suffix):
                data[name] = env[prefix + suffix]
        key = env.get(prefix + "API_KEY") or env.get("OPENAI_API_KEY")
        if key:
            data["api_key"] = key
        return cls.from_mapping(data, source=f"environment ({prefix}*)")


def redact_url(url: str) -> str:
    """`url` without user info or query values that could carry a credential."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    if parts.username or parts.password:
        netloc = f"***@{netloc}"
    query = "&".join(
        f"{pair.split('=', 1)[0]}=***" if "=" in pair else pair
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
