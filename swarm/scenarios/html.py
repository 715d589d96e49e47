"""The HTML report: one self-contained page (no network) with the summary, each failure and its
trace, and plots (confusion matrix, latency histogram, reliability diagram) embedded as PNG.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
from pathlib import Path
from typing import Any

from swarm.scenarios.metrics import MIN_CALIBRATION_STEPS, Metrics
from swarm.scenarios.runner import ScenarioResult, TestReport

__all__ = ["html_report", "write_html"]


def html_report(report: TestReport, *, title: str = "swarm scenario report") -> str:
    m = Metrics.of(report.steps)
    c = report.counts
    plots = _plots(m)
    verdict = "passed" if report.passed else "failed"
    routers = sorted({f"{s.router} ({s.router_version or '?'})" for s in report.suites})
    when = dt.datetime.fromtimestamp(report.started_at).strftime("%Y-%m-%d %H:%M:%S")
    cards = [
        ("scenarios", f"{c['passed']} / {c['scenarios']}", "passed"),
        ("routing accuracy", f"{m.accuracy:.0%}" if m.labelled else "–", f"{m.labelled} steps"),
        ("latency p50", f"{m.p50:.0f} ms", f"p95 {m.p95:.0f} ms"),
        _calibration_card(m),
    ]
    parts = [
        f"<header class='{verdict}'><h1>{_e(title)}</h1>",
        f"<p class='verdict'>{verdict.upper()}</p>",
        f"<p>{_e(when)} · {report.duration_ms / 1000:.1f} s · router {_e(', '.join(routers))}"
        "</p></header>",
        "<section class='cards'>",
        *(
            f"<div class='card'><div class='k'>{_e(k)}</div><div class='v'>{_e(v)}</div>"
            f"<div class='s'>{_e(s)}</div></div>"
            for k, v, s in cards
        ),
        "</section>",
    ]
    if report.load_errors or any(s.error for s in report.suites):
        parts.append("<section><h2>Files and suites that did not run</h2><ul class='errors'>")
        parts += [f"<li><code>{_e(e)}</code></li>" for e in report.load_errors]
        parts += [f"<li><b>{_e(s.name)}</b>: {_e(s.error)}</li>" for s in report.suites if s.error]
        parts.append("</ul></section>")
    parts.append("<section><h2>Scenarios</h2>" + _scenario_table(report) + "</section>")
    failed = [s for s in report.scenarios if not s.passed and s.error is None]
    if failed:
        parts.append("<section><h2>Failures</h2>")
        parts += [_failure(s) for s in failed]
        parts.append("</section>")
    parts.append("<section><h2>Routing</h2>" + _accuracy_table(m))
    if plots:
        parts.append("<div class='plots'>")
        parts += [
            f"<figure><img alt='{_e(name)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_e(name)}</figcaption></figure>"
            for name, data in plots
        ]
        parts.append("</div>")
    else:
        parts.append("<p class='muted'>Plots need matplotlib (pip install matplotlib).</p>")
    parts.append("</section>")
    runs = ", ".join(s.run_id for s in report.suites if s.run_id) or "not recorded"
    parts.append(f"<footer>runs: {_e(runs)} · replay one with <code>swarm replay RUN_ID</code>")
    parts.append("</footer>")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )


def _calibration_card(m: Metrics) -> tuple[str, str, str]:
    if not m.calibration:
        return ("calibration error", "–", "no step names an expected agent")
    if not m.calibration_measured:
        return (
            "calibration error",
            "–",
            f"not enough steps to measure calibration ({m.calibration_steps} < "
            f"{MIN_CALIBRATION_STEPS})",
        )
    return (
        "calibration error",
        f"{m.ece:.2f}",
        f"ECE on {m.calibration_steps} steps, lower is better",
    )


def write_html(report: TestReport, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_report(report), encoding="utf-8")
    return path


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _scenario_table(report: TestReport) -> str:
    rows = []
    for s in report.scenarios:
        mark = "<span class='pass'>pass</span>" if s.passed else "<span class='fail'>FAIL</span>"
        reasons = "<br>".join(_e(r) for r in s.reasons)
        rows.append(
            f"<tr><td>{_e(s.suite)}</td><td>{_e(s.name)}<div class='muted'>{_e(s.file)}:"
            f"{s.line}</div></td><td>{mark}</td><td class='num'>{s.duration_ms:.0f}</td>"
            f"<td>{reasons}</td></tr>"
        )
    return (
        "<table><thead><tr><th>suite</th><th>scenario</th><th>result</th><th>ms</th>"
        "<th>reason</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _accuracy_table(m: Metrics) -> str:
    if not m.labelled:
        return "<p class='muted'>No step names an expected agent.</p>"
    rows = "".join(
        f"<tr><td>{_e(a.agent)}</td><td class='num'>{a.steps}</td><td class='num'>{a.correct}"
        f"</td><td class='num'>{a.accuracy:.0%}</td></tr>"
        for a in m.per_agent
    )
    return (
        "<table class='narrow'><thead><tr><th>expected agent</th><th>steps</th><th>right</th>"
        f"<th>accuracy</th></tr></thead><tbody>{rows}<tr class='total'><td>all</td>"
        f"<td class='num'>{m.labelled}</td><td class='num'>{m.correct}</td>"
        f"<td class='num'>{m.accuracy:.0%}</td></tr></tbody></table>"
    )


def _failure(s: ScenarioResult) -> str:
    out = [f"<article class='failure'><h3>{_e(s.suite)} › {_e(s.name)}</h3><ul>"]
    out += [f"<li>{_e(r)}</li>" for r in s.reasons]
    out.append("</ul>")
    for step in s.steps:
        if step.failures and step.trace is not None:
            out.append(f"<details open><summary>trace of step {step.index + 1}: ")
            out.append(f"<code>{_e(step.task_id)}</code></summary>{_tree(step.trace)}</details>")
    out.append("</article>")
    return "".join(out)


def _tree(node: dict[str, Any]) -> str:
    d = node.get("decision")
    route = "not routed"
    if d and d["status"] == "ambiguous" and node["status"] == "rejected":
        # The decision names its best candidate, but that agent did not take the task.
        top = [f"{a} ({p:.2f})" for a, p in (d.get("candidates") or [])[:2]]
        route = "route: rejected: ambiguous" + (" between " + " and ".join(top) if top else "")
    elif d:
        route = f"route: {d['status']} → {d['agent'] or 'none'} ({d['confidence']:.2f})"
        if d.get("candidates"):
            route += " · " + ", ".join(f"{a} {p:.2f}" for a, p in d["candidates"])
    output = node.get("output")
    shown = output if isinstance(output, str) else json.dumps(output, default=repr)
    items = [
        f"<li><b>{_e(node['text'])}</b> <span class='st {_e(node['status'])}'>"
        f"{_e(node['status'])}</span> {_e(node.get('agent') or '')}",
        f"<div class='muted'>{_e(route)}</div>",
        f"<div>output: <code>{_e(shown)}</code></div>" if output is not None else "",
        f"<div class='fail'>error: {_e(node['error'])}</div>" if node.get("error") else "",
        "<ul>",
    ]
    for sp in node.get("spans") or []:
        ms = ""
        if sp.get("ended_at") is not None:
            ms = f" {(sp['ended_at'] - sp['started_at']) * 1000:.1f} ms"
        shown_attrs = dict(sp.get("attributes") or {})
        traceback = shown_attrs.pop("traceback", None)  # where the agent raised: shown whole
        attrs = json.dumps(shown_attrs, default=repr)
        attrs = attrs if len(attrs) <= 160 else attrs[:159] + "…"
        err = f" <span class='fail'>{_e(sp['error'])}</span>" if sp.get("error") else ""
        tb = f"<pre class='fail'>{_e(str(traceback).rstrip())}</pre>" if traceback else ""
        items.append(
            f"<li class='span'>{_e(sp['kind'])} <b>{_e(sp['name'])}</b>{ms}{err} "
            f"<code class='muted'>{_e(attrs)}</code>{tb}</li>"
        )
    items += [_tree(child) for child in node.get("children") or []]
    items.append("</ul></li>")
    return "<ul class='tree'>" + "".join(items) + "</ul>"


# ---- plots -------------------------------------------------------------------------------------


def _plots(m: Metrics) -> list[tuple[str, str]]:
    try:
        # The object API, not pyplot: no global backend switch inside someone else's process.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return []
    out = []
    if m.labelled and m.labels:
        out.append(("confusion matrix", _png(_confusion(Figure, m), FigureCanvasAgg)))
    if m.latencies_ms:
        out.append(("latency per step", _png(_latency(Figure, m), FigureCanvasAgg)))
    if m.calibration:
        out.append(
            (
                "reliability of the router's confidence",
                _png(_reliability(Figure, m), FigureCanvasAgg),
            )
        )
    return out


def _png(fig: Any, canvas_cls: Any) -> str:
    canvas_cls(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _confusion(figure: Any, m: Metrics) -> Any:
    n = len(m.labels)
    grid = [[m.confusion.get((e, g), 0) for g in m.labels] for e in m.labels]
    fig = figure(figsize=(1.2 + 0.75 * n, 1.0 + 0.7 * n))
    ax = fig.add_subplot()
    ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(n), labels=m.labels, rotation=35, ha="right")
    ax.set_yticks(range(n), labels=m.labels)
    ax.set_xlabel("got (the agent that took it, or why it was rejected)")
    ax.set_ylabel("expected")
    top = max(max(r) for r in grid) or 1
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v:
                colour = "white" if v > top / 2 else ("#b00020" if i != j else "black")
                ax.text(j, i, str(v), ha="center", va="center", color=colour, fontsize=10)
    return fig


def _latency(figure: Any, m: Metrics) -> Any:
    fig = figure(figsize=(5.2, 3.2))
    ax = fig.add_subplot()
    ax.hist(m.latencies_ms, bins=min(30, max(5, len(m.latencies_ms) // 2)), color="#4c72b0")
    # The percentiles are named in a legend, not written beside their lines: p50 and p95 are
    # often a few pixels apart, and two labels there print over each other.
    for q, value, style in (("p50", m.p50, "--"), ("p95", m.p95, ":")):
        ax.axvline(
            value, color="#333333", linestyle=style, linewidth=1, label=f"{q} {value:.0f} ms"
        )
    ax.legend(loc="upper right", fontsize=8, frameon=False, handlelength=2.5)
    ax.set_xlabel("ms from submit to result")
    ax.set_ylabel("steps")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _reliability(figure: Any, m: Metrics) -> Any:
    fig = figure(figsize=(4.2, 4.0))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="perfect")
    xs = [(b.low + b.high) / 2 for b in m.calibration]
    ax.bar(
        xs,
        [b.accuracy for b in m.calibration],
        width=0.09,
        color="#55a868",
        alpha=0.8,
        label="accuracy",
    )
    ax.plot(
        [b.confidence for b in m.calibration],
        [b.accuracy for b in m.calibration],
        "o",
        color="#333333",
        markersize=4,
        label="mean confidence",
    )
    for x, b in zip(xs, m.calibration, strict=True):
        ax.text(x, min(b.accuracy + 0.03, 1.02), str(b.count), ha="center", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("router confidence")
    ax.set_ylabel("routed right")
    if m.calibration_measured:
        ax.set_title(f"ECE {m.ece:.2f} on {m.calibration_steps} steps", fontsize=9)
    else:
        ax.set_title(
            f"not enough steps to measure calibration ({m.calibration_steps} < "
            f"{MIN_CALIBRATION_STEPS})",
            fontsize=9,
        )
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return fig


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d1d1f;
background:#f6f7f9}
header{padding:18px 32px;color:#fff}header.passed{background:#1b7f3b}
header.failed{background:#b3261e}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0}.verdict{font-weight:700;font-size:18px}
section{margin:18px 32px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px}
.cards{display:flex;gap:14px;flex-wrap:wrap}.card{background:#fff;border-radius:8px;
padding:12px 18px;box-shadow:0 1px 3px #0002;min-width:170px}.card .k{color:#666;font-size:13px}
.card .v{font-size:26px;font-weight:700}.card .s{color:#888;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 3px #0001}
table.narrow{width:auto}th,td{padding:6px 10px;border-bottom:1px solid #eee;text-align:left;
vertical-align:top}th{background:#fafafa;font-weight:600}td.num{text-align:right}
tr.total td{font-weight:700}.pass{color:#1b7f3b;font-weight:600}.fail{color:#b3261e;font-weight:600}
.muted{color:#888;font-size:12px}code{font:12px ui-monospace,Menlo,monospace}
.failure{background:#fff;border-left:4px solid #b3261e;padding:8px 16px;margin:12px 0;
box-shadow:0 1px 3px #0001}.failure h3{margin:4px 0}ul.tree{list-style:none;padding-left:16px}
li.span{font-size:13px}.st.done{color:#1b7f3b}.st.failed{color:#b3261e}.st.rejected{color:#8e24aa}
.plots{display:flex;flex-wrap:wrap;gap:18px;margin-top:14px}figure{background:#fff;margin:0;
padding:10px;box-shadow:0 1px 3px #0001;border-radius:6px}figure img{max-width:520px}
figcaption{text-align:center;color:#555;font-size:13px}footer{margin:24px 32px;color:#888;
font-size:12px}ul.errors code{color:#b3261e}
"""
