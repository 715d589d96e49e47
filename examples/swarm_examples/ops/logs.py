"""Log triage: find bursts of errors in a log file and their likely cause, and write a sample
core-banking log (with an injected burst) for the sandbox, the suites and the tests.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Burst", "LogLine", "find_bursts", "parse_log", "triage", "write_sample_log"]

_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\S*\s+(?P<level>DEBUG|INFO|WARN|WARNING|ERROR|"
    r"CRITICAL|FATAL)\s+(?P<service>[\w.-]+)\s+(?P<message>.*)$"
)
_ERROR_LEVELS = {"ERROR", "CRITICAL", "FATAL"}
_VARIABLE = re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{8,}\b|\d+(?:\.\d+)?", re.I)


@dataclass(frozen=True, slots=True)
class LogLine:
    number: int
    at: dt.datetime
    level: str
    service: str
    message: str

    @property
    def signature(self) -> str:
        """The message with its numbers and ids blanked: lines that differ only there group."""
        return f"{self.service}: {_VARIABLE.sub('#', self.message)}"


@dataclass(slots=True)
class Burst:
    start: str
    end: str
    errors: int
    per_minute_peak: int
    baseline_per_minute: float
    top_error: str
    top_error_count: int
    first_error: str
    first_error_line: int
    likely_cause: str
    services: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_log(text: str) -> tuple[list[LogLine], int]:
    """The lines that look like `TIMESTAMP LEVEL SERVICE message`, and how many did not."""
    lines, skipped = [], 0
    for number, raw in enumerate(text.splitlines(), start=1):
        m = _LINE.match(raw.strip())
        if m is None:
            skipped += bool(raw.strip())
            continue
        level = "WARN" if m["level"] == "WARNING" else m["level"]
        at = dt.datetime.fromisoformat(m["ts"])
        lines.append(LogLine(number, at, level, m["service"], m["message"].strip()))
    return lines, skipped


def find_bursts(lines: list[LogLine], *, min_errors: int = 5, factor: float = 4.0) -> list[Burst]:
    """Minutes with at least `min_errors` errors and `factor` times the typical minute, merged
    when consecutive. The likely cause is the warning that came just before the burst (a pool
    filling up, a disk getting full), else the burst's first error."""
    errors = [ln for ln in lines if ln.level in _ERROR_LEVELS]
    if not errors or not lines:
        return []
    per_minute = Counter(ln.at.replace(second=0) for ln in errors)
    first, last = lines[0].at.replace(second=0), lines[-1].at.replace(second=0)
    minutes = max(1, int((last - first).total_seconds() // 60) + 1)
    counts = sorted([per_minute.get(first + dt.timedelta(minutes=i), 0) for i in range(minutes)])
    baseline = counts[len(counts) // 2]  # the median minute: robust to the burst itself
    hot = sorted(
        m for m, n in per_minute.items() if n >= max(min_errors, factor * max(baseline, 0.5))
    )
    spans: list[list[dt.datetime]] = []
    for minute in hot:
        if spans and minute - spans[-1][-1] <= dt.timedelta(minutes=1):
            spans[-1].append(minute)
        else:
            spans.append([minute])
    bursts = []
    for span in spans:
        start, end = span[0], span[-1] + dt.timedelta(minutes=1)
        inside = [ln for ln in errors if start <= ln.at < end]
        top, top_n = Counter(ln.signature for ln in inside).most_common(1)[0]
        warn_from = start - dt.timedelta(minutes=5)
        before = [ln for ln in lines if ln.level == "WARN" and warn_from <= ln.at < inside[0].at]
        cause = (
            f"{before[-1].service}: {before[-1].message} (warning at line {before[-1].number})"
            if before
            else f"{inside[0].service}: {inside[0].message} (first error, line {inside[0].number})"
        )
        bursts.append(
            Burst(
                start=start.isoformat(),
                end=end.isoformat(),
                errors=len(inside),
                per_minute_peak=max(per_minute[m] for m in span),
                baseline_per_minute=float(baseline),
                top_error=top,
                top_error_count=top_n,
                first_error=f"{inside[0].service}: {inside[0].message}",
                first_error_line=inside[0].number,
                likely_cause=cause,
                services=dict(Counter(ln.service for ln in inside).most_common()),
            )
        )
    return bursts


def triage(text: str) -> dict[str, Any]:
    """Everything the log triage agent reports about one log's text."""
    lines, skipped = parse_log(text)
    bursts = find_bursts(lines)
    errors = sum(ln.level in _ERROR_LEVELS for ln in lines)
    if bursts:
        b = bursts[0]
        summary = (
            f"{len(bursts)} error burst(s); the first from {b.start} to {b.end}: {b.errors} errors "
            f"(peak {b.per_minute_peak}/min against a usual {b.baseline_per_minute:g}/min), "
            f"mostly {b.top_error!r}. Likely cause: {b.likely_cause}."
        )
    else:
        summary = f"No error bursts: {errors} errors spread over {len(lines)} lines."
    return {
        "lines": len(lines),
        "unparsed_lines": skipped,
        "errors": errors,
        "bursts": [b.to_dict() for b in bursts],
        "summary": summary,
    }


def write_sample_log(
    path: str | Path,
    *,
    burst_at: str | None = "2024-05-01T10:42:00",
    burst_errors: int = 60,
    cause: str = "connection pool exhausted (50/50 in use)",
    minutes: int = 90,
    seed: int = 7,
) -> Path:
    """A core-banking log: steady traffic, a few scattered errors, and (unless `burst_at` is None)
    a warning followed by a burst of timeouts, as an incident looks in real logs."""
    rng = random.Random(seed)
    start = dt.datetime(2024, 5, 1, 10, 0, 0)
    rows: list[tuple[dt.datetime, str, str, str]] = []
    services = ["core-banking", "card-processor", "payments-gateway", "notifications"]
    for i in range(minutes * 6):
        at = start + dt.timedelta(seconds=10 * i + rng.randint(0, 9))
        svc = rng.choice(services)
        rows.append(
            (
                at,
                "INFO",
                svc,
                f"handled request id={rng.randint(10_000, 99_999)} in {rng.randint(5, 80)}ms",
            )
        )
        if rng.random() < 0.02:
            rows.append(
                (
                    at,
                    "ERROR",
                    svc,
                    f"request id={rng.randint(10_000, 99_999)} failed: upstream returned 502",
                )
            )
    if burst_at is not None:
        b = dt.datetime.fromisoformat(burst_at)
        rows.append((b - dt.timedelta(seconds=40), "WARN", "core-banking", cause))
        for k in range(burst_errors):
            at = b + dt.timedelta(seconds=k * 150 // max(burst_errors, 1))
            rows.append(
                (
                    at,
                    "ERROR",
                    "card-processor",
                    f"authorisation {rng.randint(1000, 9999)} "
                    f"timed out after 3000ms waiting for core-banking",
                )
            )
    rows.sort(key=lambda r: r[0])
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(f"{at.isoformat()}Z {lvl} {svc} {msg}\n" for at, lvl, svc, msg in rows))
    return p
