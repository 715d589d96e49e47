"""Where an LLM endpoint is and how to talk to it, from code, a config mapping or the environment.

Every credential is a secret that never shows in a repr, a dump, a validation error, a log line
or a recorded request: the API key, the base URL's user info and query, and the header values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Secret,
    SecretStr,
    ValidationError,
    field_validator,
)

from swarm.errors import ConfigError
from swarm.llm.redaction import MASK, is_credential_name, redact_url, url_secrets

__all__ = ["EndpointConfig", "SecretURL", "redact_url"]

ENV_PREFIX = "SWARM_LLM_"


class SecretURL(Secret[str]):
    """A URL that may hold credentials: `str()`, `repr()` and JSON dumps show `redact_url` of it;
    `get_secret_value()` gives it whole."""

    def _display(self) -> str:
        return redact_url(self.get_secret_value())


class EndpointConfig(BaseModel):
    """One OpenAI-compatible endpoint. `base_url` is the part before `/chat/completions`.

    ```python
    EndpointConfig(base_url="http://127.0.0.1:8080/v1", model="smollm2")
    EndpointConfig(base_url="https://api.example.com/v1", api_key_env="EXAMPLE_API_KEY")
    ```
    """

    # hide_input_in_errors: a validation error must not print what it was given (the key).
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    base_url: SecretURL
    """Shown without user info and query values (`https://***@host/v1?key=***`); a password in
    it is sent as Basic auth, never in a URL (`url_parts`)."""
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
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Sent with every request; values are secrets (an `api-key` or `Authorization` header)."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _without_inputs(exc) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> EndpointConfig:
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise _without_inputs(exc) from None

    @field_validator("base_url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> Any:
        if isinstance(value, Secret):
            value = value.get_secret_value()
        if not isinstance(value, str):
            raise ValueError("base_url must be a string")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ValueError(f"base_url is not a valid URL: {redact_url(value)!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = redact_url(value)
            raise ValueError(f"base_url must be an http(s) URL with a host, got {shown!r}")
        return urlunsplit(parts._replace(path=parts.path.rstrip("/"), fragment=""))

    def key(self) -> str | None:
        """The API key: given directly, else read from `api_key_env` at call time."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        return None

    @property
    def safe_url(self) -> str:
        """The base URL as it may be shown: no user info, query values masked."""
        return str(self.base_url)

    def url_parts(self) -> tuple[str, str, tuple[str, str] | None]:
        """`(base URL without user info or query, the query string, (user, password) or None)`:
        how the client connects, so that no URL it builds or logs holds the password."""
        parts = urlsplit(self.base_url.get_secret_value())
        auth = None
        if "@" in parts.netloc:
            userinfo, _, hostport = parts.netloc.rpartition("@")
            user, _, password = userinfo.partition(":")
            auth = (unquote(user), unquote(password))
        else:
            hostport = parts.netloc
        base = urlunsplit((parts.scheme, hostport, parts.path, "", ""))
        return base, parts.query, auth

    def secrets(self) -> tuple[str, ...]:
        """Every credential string this endpoint holds, in the forms it may be echoed in: the
        key, the URL's (see `redaction.url_secrets`), and credential-named header values."""
        found = list(url_secrets(self.base_url.get_secret_value()))
        key = self.key()
        if key:
            found.append(key)
        for name, value in self.headers.items():
            if is_credential_name(name):
                secret = value.get_secret_value()
                found.append(secret)
                scheme, _, token = secret.partition(" ")
                if token and scheme.lower() in ("bearer", "basic", "token"):
                    found.append(token)
        return tuple(dict.fromkeys(s for s in found if s))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "config") -> EndpointConfig:
        """Build from a config file's section; errors name the field and where it came from."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
                for err in exc.errors(include_input=False)
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


def _without_inputs(exc: ValidationError) -> ValidationError:
    """`exc` with every input value replaced by `***`: `hide_input_in_errors` keeps them out of
    the message, and this keeps them out of `errors()` too (a web framework may echo those)."""
    details: list[Any] = [
        {
            "type": err["type"],
            "loc": err["loc"],
            "input": MASK,
            **({"ctx": err["ctx"]} if "ctx" in err else {}),
        }
        for err in exc.errors(include_url=False)
    ]
    return ValidationError.from_exception_data(exc.title, details, hide_input=True)
