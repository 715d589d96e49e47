"""Router versions through the API: list them, switch the serving one, and the running scheduler
routes with it from then on (no restart)."""

from __future__ import annotations

from pathlib import Path

import httpx

from swarm.agents import AgentRegistry
from swarm.router import Router, current_version
from tests.serve.conftest import MakeServer, wait_done


def test_list_and_use_versions(
    make_server: MakeServer, registry: AgentRegistry, models_dir: Path
) -> None:
    serving = Router.load(models_dir)
    assert serving.version == "v2-second"
    server = make_server(router=serving, models_dir=models_dir)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        listed = client.get("/v1/router/versions").json()
        assert listed["serving"] == "v2-second" and listed["routing"] == "v2-second"
        assert [v["version"] for v in listed["versions"]] == ["v1-first", "v2-second"]
        assert [v["serving"] for v in listed["versions"]] == [False, True]
        assert listed["versions"][0]["agents"] == registry.names
        assert listed["versions"][0]["created_at"]

        before = wait_done(client, client.post("/v1/tasks", json={"text": "top up"}).json()["id"])
        assert before["decision"]["router_version"] == "v2-second"

        used = client.post("/v1/router/versions/v1/use")  # a unique start will do
        assert used.status_code == 200, used.text
        assert used.json() == {
            "serving": "v1-first",
            "previous": "v2-second",
            "routing": "v1-first",
        }
        assert current_version(models_dir) == "v1-first"  # CURRENT moved: a restart keeps it
        after = wait_done(client, client.post("/v1/tasks", json={"text": "top up"}).json()["id"])
        assert after["decision"]["router_version"] == "v1-first"
        assert after["decision"]["neighbours"]  # the new router explains its own decisions
        # The earlier decision was another version's: its neighbours are not shown.
        assert client.get(f"/v1/tasks/{before['id']}").json()["decision"]["neighbours"] == []

        listed = client.get("/v1/router/versions").json()
        assert listed["serving"] == "v1-first" and listed["routing"] == "v1-first"


def test_version_errors(make_server: MakeServer, registry: AgentRegistry, models_dir: Path) -> None:
    from swarm.testing import centroid_router

    other = AgentRegistry([a for a in registry if a.name != "fees"])
    centroid_router(other, "v3-without-fees").save(models_dir, make_current=False)
    server = make_server(router=Router.load(models_dir), models_dir=models_dir)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        listed = client.get("/v1/router/versions").json()["versions"]
        assert "v3-without-fees" not in [v["version"] for v in listed]  # not for these agents

        unknown = client.post("/v1/router/versions/1999/use")
        assert unknown.status_code == 404 and "'1999' is not a version" in unknown.json()["detail"]
        ambiguous = client.post("/v1/router/versions/v/use")
        assert ambiguous.status_code == 404 and "ambiguous" in ambiguous.json()["detail"]
        mismatched = client.post("/v1/router/versions/v3/use")
        assert mismatched.status_code == 409 and "fees" in mismatched.json()["detail"]
        assert current_version(models_dir) == "v2-second"
        assert client.get("/v1/router/versions").json()["routing"] == "v2-second"
