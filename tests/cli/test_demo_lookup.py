"""Which demo `swarm demo` and `swarm console` pick when none is named: the framework names no
example; it asks the `swarm.demos` entry points, and says how to install one when there is none."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import swarm.cli.demo as demo_module
from swarm.cli import main
from swarm.cli.console_command import default_agents
from swarm.errors import ConfigError


@pytest.mark.parametrize(
    ("installed", "picked"),
    [
        ({"bank": "b:PACK", "quickstart": "q:PACK"}, "bank"),
        ({"helpdesk": "h:PACK"}, "helpdesk"),
    ],
)
def test_the_default_demo_is_the_bank_or_the_only_one(
    monkeypatch: pytest.MonkeyPatch, installed: dict[str, str], picked: str
) -> None:
    monkeypatch.setattr(demo_module, "installed_demos", lambda: installed)
    assert demo_module.default_demo() == picked


def test_several_demos_and_no_bank_must_be_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_module, "installed_demos", lambda: {"a": "a:P", "b": "b:P"})
    with pytest.raises(ConfigError, match="several demos installed, name one: a, b"):
        demo_module.default_demo()


def test_no_demo_installed_says_how_to_install_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_module, "installed_demos", lambda: {})
    with pytest.raises(ConfigError, match=r"no demo installed .*pip install -e examples"):
        demo_module.default_demo()
    r = CliRunner().invoke(main, ["demo"])
    assert r.exit_code == 2 and "no demo installed" in r.output
    monkeypatch.setattr("swarm.agents.installed_demos", lambda: {})
    with pytest.raises(ConfigError, match="no demo installed"):
        default_agents()
    r = CliRunner().invoke(main, ["demo", "--list"])
    assert r.exit_code == 0 and "no demo installed" in r.output


def test_quickstart_flag_and_another_name_conflict() -> None:
    r = CliRunner().invoke(main, ["demo", "bank", "--quickstart"])
    assert r.exit_code == 2 and "--quickstart runs the quickstart demo" in r.output
