"""Driving the real console through a pseudo-terminal (used by conftest's `spawn` fixture)."""

from __future__ import annotations

import re
from pathlib import Path

import pexpect

PROMPT = "swarm› "
STARTUP = 40  # seconds: `import swarm` and rich take 1-2 s, much more on a loaded machine
STEP = 20

ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]|\x1b[()][AB0-2]|\r")


def plain(text: str) -> str:
    """The screen's text without terminal escapes (styles, cursor moves)."""
    return ANSI.sub("", text)


class ConsoleProcess:
    """The real console in a pseudo-terminal; `send` a line and `expect` what the screen shows."""

    def __init__(self, child: pexpect.spawn, db: str, history: Path) -> None:
        self.child = child
        self.db = db
        self.history = history

    def expect(self, pattern: str, timeout: float = STEP) -> str:
        self.child.expect(pattern, timeout=timeout)
        return str(self.child.before) + str(self.child.after)

    def expect_prompt(self, timeout: float = STEP) -> str:
        """Everything printed up to the next prompt."""
        return self.expect(PROMPT, timeout)

    def send(self, line: str) -> str:
        """Type `line` and return what the console printed before the next prompt."""
        self.child.sendline(line)
        return self.expect_prompt()

    def quit(self) -> None:
        self.child.sendline("/quit")
        self.child.expect(pexpect.EOF, timeout=STEP)
        self.child.close()
        assert self.child.exitstatus == 0, self.child.before
