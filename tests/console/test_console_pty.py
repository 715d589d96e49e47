"""The real console in a pseudo-terminal (keyword router, so no model loads): requests, commands,
feedback, Ctrl-C and Ctrl-D, and what the trace store holds afterwards."""

from __future__ import annotations

import time
from collections.abc import Callable

import pexpect
from console_driver import STEP, ConsoleProcess, plain

from swarm.trace import TraceStore


def test_request_shows_decision_status_and_result_and_is_traced(
    spawn: Callable[..., ConsoleProcess],
) -> None:
    c = spawn("--router", "keyword")
    screen = plain(c.send("I want a refund for my order"))
    assert "route billing" in screen  # the decision, with its bars and the router version
    assert "router keyword" in screen
    assert "billing delegates “what is the status of order A100”" in screen  # a child task live
    assert "done by orders" in screen
    assert "result done" in screen and "refund" in screen
    screen = plain(c.send("/trace"))
    assert "delegate orders" in screen and "what is the status of order A100" in screen
    c.quit()
    with TraceStore(c.db) as store:
        (run,) = store.runs()
        assert run["kind"] == "console"
        assert run["agents"] == "swarm_examples.quickstart"  # the default swarm
        session = run["meta"]["session"]
        tasks = store.tasks(run_id=run["id"], limit=None)
        assert len(tasks) == 2 and all(t["session_id"] == session for t in tasks)


def test_commands_and_feedback(spawn: Callable[..., ConsoleProcess]) -> None:
    c = spawn("--router", "keyword")
    screen = plain(c.send("/help"))
    for usage in ("/agents", "/why", "/trace [ID]", "/route AGENT", "/retrain", "/quit"):
        assert usage in screen
    screen = plain(c.send("/agents"))
    assert "tech_support" in screen and "concurrency" in screen and "5s" in screen
    assert "no request routed yet" in plain(c.send("/good"))
    c.send("where is my order A100")
    assert "orders was right" in plain(c.send("/good"))
    assert "noted as wrong" in plain(c.send("/bad"))
    screen = plain(c.send("/why"))
    assert "route orders" in screen and "no explanations" in screen
    screen = plain(c.send("/route accounts"))
    assert "correction recorded" in screen
    assert "sent to accounts without routing" in screen and "result done" in screen
    screen = plain(c.send("/history"))
    assert "where is my order A100" in screen and screen.count("accounts") >= 1
    assert "needs the learned router" in plain(c.send("/retrain"))
    c.quit()
    with TraceStore(c.db) as store:
        (run,) = store.runs()
        session = run["meta"]["session"]
        feedback = store.feedback()
        assert [f["kind"] for f in feedback] == ["good", "bad", "correction"]
        assert all(f["session_id"] == session for f in feedback)
        assert feedback[2]["agent"] == "accounts" and feedback[2]["routed_agent"] == "orders"
        assert store.labelled_feedback() == [
            ("where is my order A100", "orders"),
            ("where is my order A100", "accounts"),
        ]


def test_wrong_input_gets_a_help_line_never_a_traceback(
    spawn: Callable[..., ConsoleProcess],
) -> None:
    c = spawn("--router", "keyword")
    for line, expected in [
        ("/nope", "unknown command /nope"),
        ("/route", "usage: /route AGENT"),
        ("/good now", "usage: /good"),
        ("/trace a b", "usage: /trace [ID]"),
        ("/trace zzzz", "no task with id 'zzzz'"),
        ("/", "a command follows the slash"),
        ('/route "open', "cannot read that line"),
        ("/why", "no request routed yet"),
    ]:
        screen = plain(c.send(line))
        assert expected in screen, (line, screen)
        assert "Traceback" not in screen
    c.send("where is my order")
    assert "no agent named 'nobody'" in plain(c.send("/route nobody"))
    c.quit()


def test_out_of_scope_and_ambiguous_decisions_say_so(
    spawn: Callable[..., ConsoleProcess],
) -> None:
    c = spawn("--router", "keyword")
    screen = plain(c.send("what is the capital of France"))
    assert "out of scope" in screen and "none of the agents should take this" in screen
    assert "result rejected" in screen
    # "password app": one word for accounts, one for tech_support, a tie for the keyword router
    screen = plain(c.send("password app"))
    assert "ambiguous, did you mean accounts or tech_support?" in screen
    assert "/route accounts" in screen and "result rejected" in screen
    screen = plain(c.send("/route tech_support"))
    assert "sent to tech_support without routing" in screen and "result done" in screen
    c.quit()


def test_ctrl_c_cancels_the_request_and_its_children_not_the_session(
    spawn: Callable[..., ConsoleProcess], pack: str
) -> None:
    c = spawn("--router", "keyword", "--agents", pack)
    c.child.sendline("sleep for a while")
    c.expect("working on “snooze in the background”")  # the child works, the parent waits
    c.child.sendintr()
    screen = plain(c.expect_prompt())
    assert "cancelled" in screen
    # the session goes on
    assert "hello!" in plain(c.send("say hello"))
    c.quit()
    with TraceStore(c.db) as store:
        tasks = {t["text"]: t for t in store.tasks(limit=None)}
        assert tasks["sleep for a while"]["status"] == "cancelled"
        assert tasks["snooze in the background"]["status"] == "cancelled"
        assert tasks["snooze in the background"]["parent_id"] == tasks["sleep for a while"]["id"]
        assert tasks["say hello"]["status"] == "done"


def test_ctrl_c_at_the_prompt_and_ctrl_d_leave_cleanly(
    spawn: Callable[..., ConsoleProcess],
) -> None:
    c = spawn("--router", "keyword")
    c.child.send("half a line")
    # As a person would: readline has the keys before the Ctrl-C. A SIGINT that lands while
    # readline is still handling them is noticed only at the next key (CPython's readline).
    c.expect("half a line")
    time.sleep(0.2)
    c.child.sendintr()
    c.expect_prompt()  # a fresh prompt, the session still there
    assert "result done" in plain(c.send("the app crashes when I open it"))
    c.child.sendeof()
    c.expect("bye")
    c.child.expect(pexpect.EOF, timeout=STEP)
    c.child.close()
    assert c.child.exitstatus == 0


def test_history_is_kept_across_sessions(spawn: Callable[..., ConsoleProcess]) -> None:
    c = spawn("--router", "keyword")
    c.send("where is my order A200")
    c.quit()
    assert "where is my order A200" in c.history.read_text()
    c = spawn("--router", "keyword")
    c.child.send("\x1b[A\x1b[A")  # arrow up twice: past /quit to the last session's request
    time.sleep(0.2)
    c.child.send("\r")
    assert "Order A200 is being packed" in plain(c.expect_prompt())
    c.quit()


def test_ctrl_c_prints_no_traceback(spawn: Callable[..., ConsoleProcess], pack: str) -> None:
    c = spawn("--router", "keyword", "--agents", pack)
    c.child.sendline("sleep for a while")
    c.expect("working on “snooze in the background”")
    c.child.sendintr()
    screen = plain(c.expect_prompt())
    screen += plain(c.send("say hello"))
    c.quit()
    assert "Traceback" not in screen and "writer process failed" not in screen
