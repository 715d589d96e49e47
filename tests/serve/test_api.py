"""The API through a real uvicorn server on loopback: submit, poll, list, traces, feedback, runs,
agents, and the errors a client gets for what it got wrong."""

from __future__ import annotations

import httpx
import pytest

from swarm.testing import centroid_router
from swarm.testing.serve import LiveServer
from tests.serve.conftest import MakeServer, wait_done


def test_submit_then_poll_until_done(client: httpx.Client) -> None:
    answer = client.post("/v1/tasks", json={"text": "please block my card ending 4821"})
    assert answer.status_code == 202
    submitted = answer.json()
    assert submitted["status"] == "queued" and len(submitted["id"]) > 8

    task = wait_done(client, submitted["id"])
    assert task["id"] == submitted["id"]
    assert task["status"] == "done"
    assert task["agent"] == task["decision"]["agent"]
    assert task["decision"]["status"] == "routed"
    assert task["decision"]["candidates"][0][0] == task["decision"]["agent"]
    assert task["decision"]["router_version"] == "keyword"
    assert task["decision"]["neighbours"] == []  # the keyword router keeps no examples
    assert isinstance(task["output"], dict) and task["output"]["reply"]


def test_a_forced_agent_and_payload_reach_the_agent(client: httpx.Client) -> None:
    answer = client.post(
        "/v1/tasks",
        json={
            "text": "block it",
            "agent": "cards",
            "payload": {"card": "4821", "customer": "C001"},
        },
    )
    task = wait_done(client, answer.json()["id"])
    assert task["status"] == "done" and task["hops"][0] == "cards"  # (it may hand off)
    assert task["forced_agent"] == "cards" and task["payload"]["card"] == "4821"
    assert task["decision"]["status"] == "forced"


def test_a_task_is_found_by_the_end_of_its_id(client: httpx.Client) -> None:
    task_id = client.post("/v1/tasks", json={"text": "what is my balance"}).json()["id"]
    wait_done(client, task_id)
    assert client.get(f"/v1/tasks/{task_id[-8:]}").json()["id"] == task_id


def test_decisions_show_the_nearest_training_examples(make_server: MakeServer) -> None:
    from swarm_examples import bank

    server = make_server(router=centroid_router(_bank_registry(bank), "v-explains"))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        text = "my card has not arrived yet"
        task = wait_done(client, client.post("/v1/tasks", json={"text": text}).json()["id"])
    neighbours = task["decision"]["neighbours"]
    assert len(neighbours) == 5
    similarities = [n["similarity"] for n in neighbours]
    assert similarities == sorted(similarities, reverse=True) and similarities[0] > 0.3
    assert {"text", "agent", "similarity"} == set(neighbours[0])


def _bank_registry(bank: object) -> object:
    from swarm.agents import AgentRegistry

    reg = AgentRegistry()
    reg.add_pack(bank.PACK)  # type: ignore[attr-defined]
    return reg


def test_list_tasks_by_status_and_run(client: httpx.Client) -> None:
    ids = [
        client.post("/v1/tasks", json={"text": t}).json()["id"]
        for t in ("block my card 4821", "what are your fees", "tell me a joke about the sea")
    ]
    for task_id in ids:
        wait_done(client, task_id)
    listed = client.get("/v1/tasks", params={"limit": 10}).json()["tasks"]
    assert {t["id"] for t in listed} == set(ids)
    run_id = listed[0]["run_id"]
    by_run = client.get("/v1/tasks", params={"run_id": run_id[-6:]}).json()["tasks"]
    assert len(by_run) == 3
    done = client.get("/v1/tasks", params={"status": "done"}).json()["tasks"]
    assert {t["status"] for t in done} == {"done"} and done
    assert client.get("/v1/tasks", params={"limit": 1}).json()["tasks"][0]["id"] in ids


def test_runs_and_traces(client: httpx.Client) -> None:
    task_id = client.post("/v1/tasks", json={"text": "I lost my card ending 4821"}).json()["id"]
    wait_done(client, task_id)
    runs = client.get("/v1/runs").json()["runs"]
    assert runs[0]["kind"] == "serve" and runs[0]["tasks"] == 1 and runs[0]["finished_at"] is None
    tree = client.get(f"/v1/traces/{task_id}").json()
    assert tree["id"] == task_id and tree["decision"]["agent"] == tree["agent"]
    kinds = {span["kind"] for span in tree["spans"]}
    assert "agent" in kinds and "tool" in kinds  # the agent called the bank's tools
    assert tree["children"] == []


def test_feedback_is_stored_and_feeds_the_metrics(client: httpx.Client) -> None:
    good = client.post("/v1/tasks", json={"text": "block my card ending 4821"}).json()["id"]
    wrong = client.post("/v1/tasks", json={"text": "what are your fees"}).json()["id"]
    routed = {t: wait_done(client, t)["decision"]["agent"] for t in (good, wrong)}
    right_agent = "exchange" if routed[wrong] != "exchange" else "fees"

    ok = client.post(f"/v1/tasks/{good}/feedback", json={"verdict": "good"})
    assert ok.status_code == 201 and ok.json()["kind"] == "good"
    corrected = client.post(
        f"/v1/tasks/{wrong[-8:]}/feedback", json={"agent": right_agent, "note": "fx fees"}
    ).json()
    assert corrected["kind"] == "correction" and corrected["task_id"] == wrong
    assert corrected["routed_agent"] == routed[wrong] and corrected["agent"] == right_agent

    metrics = client.get("/v1/router/metrics").json()
    assert metrics["source"] == "feedback" and metrics["n"] == 2 and metrics["accuracy"] == 0.5
    assert metrics["labelled"] == 2
    labels = metrics["labels"]
    assert set(labels) == {routed[good], routed[wrong], right_agent}
    matrix = metrics["confusion"]
    assert matrix[labels.index(routed[good])][labels.index(routed[good])] == 1
    assert matrix[labels.index(right_agent)][labels.index(routed[wrong])] == 1
    assert sum(map(sum, matrix)) == 2

    # "bad" without the right agent: wrong, but nowhere to put it in the matrix.
    third = client.post("/v1/tasks", json={"text": "tell me a joke about the sea"}).json()["id"]
    wait_done(client, third)
    assert client.post(f"/v1/tasks/{third}/feedback", json={"verdict": "bad"}).status_code == 201
    before, metrics = metrics, client.get("/v1/router/metrics").json()
    assert metrics["n"] == 3 and metrics["labelled"] == 2 and metrics["accuracy"] == 1 / 3
    assert metrics["confusion"] == before["confusion"]
    # The last verdict on a task counts: the good one turned bad.
    client.post(f"/v1/tasks/{good}/feedback", json={"verdict": "bad"})
    metrics = client.get("/v1/router/metrics").json()
    assert metrics["n"] == 3 and metrics["accuracy"] == 0.0 and metrics["labelled"] == 1


def test_agents_and_openapi(client: httpx.Client) -> None:
    agents = client.get("/v1/agents").json()["agents"]
    cards = next(a for a in agents if a["name"] == "cards")
    assert "Card" in cards["description"] and cards["max_concurrency"] >= 1
    schema = client.get("/openapi.json").json()
    for path in (
        "/v1/tasks",
        "/v1/tasks/{task_id}",
        "/v1/tasks/{task_id}/events",
        "/v1/tasks/{task_id}/feedback",
        "/v1/runs",
        "/v1/traces/{task_id}",
        "/v1/router/versions",
        "/v1/router/versions/{version}/use",
        "/v1/router/metrics",
        "/v1/approvals",
        "/v1/approvals/{approval_id}",
        "/v1/agents",
        "/v1/auth",
    ):
        assert path in schema["paths"], path
    submit = schema["components"]["schemas"]["SubmitRequest"]
    assert submit["required"] == ["text"]


# ---- what a client gets wrong ----------------------------------------------------------------


def test_unknown_ids_are_404_naming_the_id(client: httpx.Client) -> None:
    for path in ("/v1/tasks/nosuchtask", "/v1/traces/nosuchtask", "/v1/tasks/nosuchtask/events"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "nosuchtask" in answer.json()["detail"]
    answer = client.post("/v1/tasks/nosuchtask/feedback", json={"verdict": "good"})
    assert answer.status_code == 404 and "nosuchtask" in answer.json()["detail"]


def test_bad_fields_are_422_naming_the_field(client: httpx.Client) -> None:
    cases = [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "hi", "payload": "not an object"}, "payload"),
        ({"text": "hi", "priority": "high"}, "priority"),
        ({"text": "hi", "colour": "red"}, "colour"),
        ({"text": "hi", "agent": "cardz"}, "agent"),
    ]
    for body, field in cases:
        answer = client.post("/v1/tasks", json=body)
        assert answer.status_code == 422, body
        error = answer.json()
        assert error["errors"][0]["field"] == field, error
        assert field in error["detail"]
    unknown_agent = client.post("/v1/tasks", json={"text": "hi", "agent": "cardz"}).json()
    assert "'cardz'" in unknown_agent["detail"] and "cards" in unknown_agent["detail"]

    not_json = client.post(
        "/v1/tasks", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    limit = client.get("/v1/tasks", params={"limit": 0})
    assert limit.status_code == 422 and limit.json()["errors"][0] == {
        "field": "limit",
        "location": "query",
        "message": limit.json()["errors"][0]["message"],
    }
    status = client.get("/v1/tasks", params={"status": "finished"})
    assert status.status_code == 422 and status.json()["errors"][0]["field"] == "status"


def test_bad_feedback_is_422(client: httpx.Client) -> None:
    task_id = client.post("/v1/tasks", json={"text": "block my card 4821"}).json()["id"]
    wait_done(client, task_id)
    empty = client.post(f"/v1/tasks/{task_id}/feedback", json={})
    assert empty.status_code == 422 and "verdict" in empty.json()["detail"]
    verdict = client.post(f"/v1/tasks/{task_id}/feedback", json={"verdict": "great"})
    assert verdict.status_code == 422 and verdict.json()["errors"][0]["field"] == "verdict"
    unknown = client.post(f"/v1/tasks/{task_id}/feedback", json={"agent": "loans"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "agent"
    assert "no agent named 'loans'" in unknown.json()["detail"]


def test_a_full_queue_is_503_with_retry_after(make_server: MakeServer, registry: object) -> None:
    server: LiveServer = make_server()
    server.swarm.scheduler.slots.max_queue = 0  # nothing may wait
    with httpx.Client(base_url=server.url) as client:
        answer = client.post("/v1/tasks", json={"text": "block my card 4821"})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"


def test_an_unexpected_failure_is_a_json_500_without_the_traceback(
    server: LiveServer, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(limit: int = 20) -> list[dict[str, object]]:
        raise RuntimeError("secret internals")

    assert server.swarm.store is not None
    monkeypatch.setattr(server.swarm.store, "runs", broken)
    answer = client.get("/v1/runs")
    assert answer.status_code == 500
    assert answer.json() == {
        "detail": "internal error (RuntimeError); the server log has the details"
    }
    assert client.get("/v1/agents").status_code == 200  # the server goes on
