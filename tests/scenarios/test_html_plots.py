"""The HTML report's plots and cards: percentile labels that never print over each other, and no
calibration error claimed from too few steps."""

from __future__ import annotations

import itertools

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from swarm.scenarios import Metrics, TestReport, html_report
from swarm.scenarios.html import _latency, _reliability
from swarm.scenarios.metrics import MIN_CALIBRATION_STEPS
from swarm.scenarios.runner import ScenarioResult, StepResult, SuiteResult


def _step(i: int, latency: float, confidence: float, right: bool) -> StepResult:
    return StepResult(
        index=0, user=f"text {i}", task_id=f"t{i}", status="done", agent="a", routed="a",
        decision_status="routed", confidence=confidence, expected="a",
        actual="a" if right else "b", output="ok", error=None, latency_ms=latency,
    )  # fmt: skip


def _report(steps: list[StepResult]) -> TestReport:
    scenario = ScenarioResult("s", "x", "s.yaml", 1, [], steps=steps, planned_steps=len(steps))
    return TestReport(suites=[SuiteResult("s", "s.yaml", "keyword", scenarios=[scenario])])


def _texts(fig: Figure) -> list[tuple[str, object]]:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    out = []
    for ax in fig.axes:
        found = list(ax.texts)
        if ax.get_legend() is not None:
            found += ax.get_legend().get_texts()
        out += [(t.get_text(), t.get_window_extent(renderer)) for t in found if t.get_text()]
    return out


@pytest.mark.parametrize("latencies", [[100.0] * 20, [100.0] * 19 + [104.0], [5.0, 900.0] * 5])
def test_latency_percentile_labels_never_overlap(latencies: list[float]) -> None:
    m = Metrics.of([_step(i, ms, 0.9, True) for i, ms in enumerate(latencies)])
    labels = _texts(_latency(Figure, m))
    names = [text for text, _ in labels]
    assert any(t.startswith("p50 ") for t in names) and any(t.startswith("p95 ") for t in names)
    for (a, box_a), (b, box_b) in itertools.combinations(labels, 2):
        assert not box_a.overlaps(box_b), f"{a!r} prints over {b!r}"  # type: ignore[attr-defined]


def test_no_calibration_error_is_claimed_from_too_few_steps() -> None:
    few = [_step(i, 10.0, 0.95, i % 3 != 0) for i in range(12)]
    m = Metrics.of(few)
    assert m.calibration_steps == 12 and not m.calibration_measured
    page = html_report(_report(few))
    assert f"not enough steps to measure calibration (12 &lt; {MIN_CALIBRATION_STEPS})" in page
    assert "ECE on" not in page
    title = _reliability(Figure, m).axes[0].get_title()
    assert title == f"not enough steps to measure calibration (12 < {MIN_CALIBRATION_STEPS})"

    enough = [_step(i, 10.0, 0.95, i % 3 != 0) for i in range(MIN_CALIBRATION_STEPS)]
    m = Metrics.of(enough)
    assert m.calibration_measured
    page = html_report(_report(enough))
    assert f"ECE on {MIN_CALIBRATION_STEPS} steps" in page and "not enough steps" not in page
    assert _reliability(Figure, m).axes[0].get_title().startswith(f"ECE {m.ece:.2f} on 50")


def test_the_confusion_table_lists_pairs_when_the_matrix_would_not_fit() -> None:
    import io

    from rich.console import Console

    from swarm.scenarios.views import ConfusionTable

    agents = [f"agent_number_{i}" for i in range(8)]
    steps = [_step(i, 10.0, 0.9, True) for i in range(8)]
    for step, name in zip(steps, agents, strict=True):
        step.expected = step.actual = name
    steps[0].actual = agents[1]  # one step went to the wrong agent
    m = Metrics.of(steps)

    def render(width: int) -> str:
        out = Console(file=io.StringIO(), width=width, color_system=None)
        out.print(ConfusionTable(m))
        text = out.file.getvalue()  # type: ignore[attr-defined]
        assert all(len(line.rstrip()) <= width for line in text.splitlines())
        return text

    narrow = render(80)
    assert "steps not routed as expected" in narrow
    row = next(line for line in narrow.splitlines() if "agent_number_0" in line)
    assert row.split("│")[1:4] == [" agent_number_0 ", " agent_number_1 ", "     1 "]
    wide = render(200)
    assert "expected ↓ / got →" in wide and all(a in wide for a in agents)
