"""One redaction for everything the LLM room records or shows: request and response bodies,
stream chunks, error messages, URLs and log lines. Secrets are the strings a backend knows (API
key, URL password and its Basic-auth form, query keys); credential-named fields are always masked.
"""

from __future__ import annotations

import base64
import logging
import re
import weakref
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "StreamRedactor",
    "is_credential_name",
    "redact",
    "redact_exception",
    "redact_text",
    "redact_url",
    "scrub_logs_for",
    "url_secrets",
]

MASK = "***"

MIN_SECRET = 4
"""Shorter strings are not scrubbed from free text: replacing every "ab" would wreck the text, and
a credential that short protects nothing. They are still masked wherever they are a field."""

# Body keys whose values are credentials wherever they appear (some proxies take them in-body).
_SECRET_KEYS = frozenset(
    {"api_key", "apikey", "api-key", "authorization", "password", "secret", "access_token",
     "x-api-key", "token", "bearer", "proxy-authorization", "cookie", "set-cookie"}
)
# Query parameter and header names that carry a credential: `?key=`, `?access_token=`, `api-key:`.
_CREDENTIAL_NAME = re.compile(r"key|token|secret|pass|pwd|auth|sig|credential|session|cookie", re.I)


def is_credential_name(name: str) -> bool:
    """Whether a field, header or query parameter called `name` holds a credential."""
    return str(name).lower() in _SECRET_KEYS or bool(_CREDENTIAL_NAME.search(str(name)))


def _usable(secrets: Iterable[str]) -> tuple[str, ...]:
    # Longest first, so "user:pass" goes before "pass" and nothing is left half-replaced.
    kept = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET}
    return tuple(sorted(kept, key=lambda s: (-len(s), s)))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every secret string replaced by `***`."""
    for secret in _usable(secrets):
        text = text.replace(secret, MASK)
    return text


def redact(value: Any, secrets: Iterable[str] = (), *, fields: bool = True) -> Any:
    """A copy of `value` (JSON-like) with every secret string replaced and, with `fields`,
    credential-named fields (`api_key`, `Authorization`, `password` …) masked whatever they hold.

    Requests are redacted with `fields`; responses and chunks without it (a server's own
    fields are not credentials, but it may echo the key in any text)."""
    usable = _usable(secrets)
    if isinstance(value, Mapping):
        return {
            k: MASK
            if fields and str(k).lower() in _SECRET_KEYS
            else redact(v, usable, fields=fields)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, usable, fields=fields) for v in value]
    if isinstance(value, str):
        return redact_text(value, usable)
    return value


def redact_exception(exc: BaseException, secrets: Iterable[str]) -> BaseException:
    """`exc` scrubbed in place (its args, string attributes, and the exceptions it chains to),
    so every later `str(exc)`, span error and task error is clean. Returns `exc`."""
    usable = _usable(secrets)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and usable:
        seen.add(id(current))
        try:
            current.args = tuple(redact(a, usable, fields=False) for a in current.args)
            for name, value in list(getattr(current, "__dict__", {}).items()):
                if isinstance(value, str | list | dict) and not name.startswith("__"):
                    setattr(current, name, redact(value, usable, fields=False))
        except (AttributeError, TypeError):  # a read-only attribute: leave the rest as is
            pass
        current = current.__cause__ or current.__context__
    return exc


def redact_url(url: str) -> str:
    """`url` without user info or query values (any may carry a credential)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable url>"
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"  # an IPv6 literal
    if port:
        netloc = f"{netloc}:{port}"
    if "@" in parts.netloc:
        netloc = f"{MASK}@{netloc}"
    query = "&".join(
        f"{pair.split('=', 1)[0]}={MASK}" if "=" in pair else MASK
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def url_secrets(url: str) -> tuple[str, ...]:
    """The credential strings a URL holds, in every form they may be echoed: the password and
    `user:password` (as written and percent-decoded; the user name too when it comes alone, as a
    token), the Basic-auth header value made from them, and credential-named query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ()
    found: set[str] = set()
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if userinfo:
        user, _, password = userinfo.partition(":")
        # A user name with a password is a name; alone (`https://TOKEN@host`) it is the token.
        for raw in (userinfo, password) if password else (userinfo,):
            found.update({raw, unquote(raw)})
        plain = f"{unquote(user)}:{unquote(password)}"
        found.add(plain)
        found.add(base64.b64encode(plain.encode()).decode())
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if is_credential_name(name):
            found.add(value)
    for raw in parts.query.split("&"):
        name, _, value = raw.partition("=")
        if value and is_credential_name(unquote(name)):
            found.add(value)  # as written, percent-encoding and all
    return tuple(s for s in found if s)


class StreamRedactor:
    """Scrubs secrets from a stream's text deltas, including a secret split over two chunks.

    `feed(index, text)` returns what may be shown now: a tail that could be the start of a
    secret is held back until the next piece settles it; `flush(index)` gives the rest.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = _usable(secrets)
        self._held: dict[Any, str] = {}

    def feed(self, key: Any, text: str) -> str:
        if not self.secrets:
            return text
        text = redact_text(self._held.pop(key, "") + text, self.secrets)
        hold = 0
        for secret in self.secrets:
            for size in range(min(len(secret) - 1, len(text)), hold, -1):
                if text.endswith(secret[:size]):
                    hold = size
                    break
        if hold:
            self._held[key] = text[-hold:]
            return text[:-hold]
        return text

    def flush(self, key: Any) -> str:
        return redact_text(self._held.pop(key, ""), self.secrets)

    @property
    def holding(self) -> list[Any]:
        return list(self._held)


class _LogRedactor(logging.Filter):
    """Scrubs the secrets of live backends from the HTTP client's log records (httpx logs each
    request's URL at INFO, and a key in the query would be in it)."""

    def __init__(self) -> None:
        super().__init__()
        self._sources: weakref.WeakSet[Any] = weakref.WeakSet()

    def add(self, source: Any) -> None:
        self._sources.add(source)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [s for source in list(self._sources) for s in source.secrets]
        if secrets:
            message = record.getMessage()
            clean = redact_text(message, secrets)
            if clean != message:
                record.msg, record.args = clean, ()
        return True


_log_redactor = _LogRedactor()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_log_redactor)


def scrub_logs_for(source: Any) -> None:
    """Scrub `source.secrets` from httpx's and httpcore's log records while `source` lives."""
    _log_redactor.add(source)

