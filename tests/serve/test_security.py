"""Auth, the loopback rule and the body limit, through a real server (and `swarm serve` itself for
the refusal to listen beyond loopback without a token)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from swarm.errors import ConfigError
from swarm.serve import check_bind, is_loopback
from tests.serve.conftest import MakeServer

TOKEN = "correct-horse-battery-staple"


@pytest.fixture
def locked(make_server: MakeServer) -> Iterator[str]:
    yield make_server(token=TOKEN).url


def test_every_v1_route_needs_the_token(locked: str) -> None:
    routes = [
        ("GET", "/v1/tasks"),
        ("POST", "/v1/tasks"),
        ("GET", "/v1/tasks/x"),
        ("GET", "/v1/tasks/x/events"),
        ("GET", "/v1/events"),
        ("POST", "/v1/tasks/x/feedback"),
        ("GET", "/v1/runs"),
        ("GET", "/v1/traces/x"),
        ("GET", "/v1/router/versions"),
        ("POST", "/v1/router/versions/x/use"),
        ("GET", "/v1/router/metrics"),
        ("GET", "/v1/agents"),
        ("GET", "/v1/approvals"),
        ("POST", "/v1/approvals/x"),
    ]
    with httpx.Client(base_url=locked, timeout=10) as client:
        for method, path in routes:
            answer = client.request(method, path, json={"text": "hi"})
            assert answer.status_code == 401, (method, path)
            assert answer.headers["www-authenticate"].startswith("Bearer"), path
            assert "bearer token" in answer.json()["detail"]


def test_a_wrong_token_is_refused_and_the_right_one_passes(locked: str) -> None:
    with httpx.Client(base_url=locked, timeout=10) as client:
        wrong = client.get("/v1/agents", headers={"Authorization": "Bearer nope"})
        assert (
            wrong.status_code == 401
            and 'error="invalid_token"' in wrong.headers["www-authenticate"]
        )
        basic = client.get("/v1/agents", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert basic.status_code == 401
        right = client.get("/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200 and right.json()["agents"]
        # Event streams also take it as a query parameter (browsers' EventSource sends no
        # headers); other routes do not.
        assert client.get("/v1/agents", params={"access_token": TOKEN}).status_code == 401
        with client.stream("GET", "/v1/tasks/nosuch/events", params={"access_token": TOKEN}) as r:
            assert r.status_code == 404
        with client.stream("GET", "/v1/tasks/nosuch/events", params={"access_token": "x"}) as r:
            assert r.status_code == 401


def test_the_page_and_auth_info_need_no_token(locked: str, make_server: MakeServer) -> None:
    with httpx.Client(base_url=locked, timeout=10) as client:
        assert client.get("/v1/auth").json() == {"required": True}
        assert client.get("/").status_code == 200
        assert client.get("/openapi.json").status_code == 200
        schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
        assert schemes["HTTPBearer"]["scheme"] == "bearer"
    with httpx.Client(base_url=make_server().url, timeout=10) as client:
        assert client.get("/v1/auth").json() == {"required": False}
        assert client.get("/v1/agents").status_code == 200


def test_the_token_comes_from_the_environment(
    make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARM_API_TOKEN", TOKEN)
    url = make_server(token=None).url
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/v1/agents").status_code == 401
        assert client.get("/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"}).is_success


def test_loopback_rule() -> None:
    for host in ("127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
        check_bind(host, None)
    for host in ("0.0.0.0", "::", "", "192.168.1.10", "10.0.0.1"):
        assert not is_loopback(host), host
        with pytest.raises(ConfigError, match="SWARM_API_TOKEN"):
            check_bind(host, None)
        check_bind(host, TOKEN)


@pytest.mark.slow
def test_swarm_serve_refuses_every_interface_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SWARM_API_TOKEN"}
    run = subprocess.run(
        [str(Path(sys.executable).with_name("swarm")), "serve", "--agents", "swarm_examples.bank"]
        + ["--host", "0.0.0.0", "--router", "keyword", "--db", f"sqlite:///{tmp_path}/s.db"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert "refusing to listen on '0.0.0.0' without a token" in run.stderr
    assert "SWARM_API_TOKEN" in run.stderr


# ---- the body limit --------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413(make_server: MakeServer) -> None:
    url = make_server(max_body=2000).url
    with httpx.Client(base_url=url, timeout=10) as client:
        fits = client.post("/v1/tasks", json={"text": "x" * 1000})
        assert fits.status_code == 202
        big = client.post("/v1/tasks", json={"text": "x" * 5000})
        assert big.status_code == 413 and "2000 bytes" in big.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
            yield b'{"text": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}'

        chunked = client.post(
            "/v1/tasks", content=chunks(), headers={"content-type": "application/json"}
        )
        assert chunked.status_code == 413

        def small() -> Iterator[bytes]:
            yield b'{"text": "small and chunked"}'

        ok = client.post("/v1/tasks", content=small(), headers={"content-type": "application/json"})
        assert ok.status_code == 202


def test_without_a_token_only_loopback_host_names_are_answered(make_server: MakeServer) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not reach the API."""
    url = make_server().url
    port = url.rsplit(":", 1)[1]
    with httpx.Client(base_url=url, timeout=10) as client:
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", "app.localhost", "[::1]:80"):
            assert client.get("/v1/agents", headers={"host": host}).status_code == 200, host
        for host in (f"evil.example:{port}", "127.0.0.1.nip.io", "[::2]:80", "0.0.0.0"):
            answer = client.get("/v1/agents", headers={"host": host})
            assert answer.status_code == 421, host
            assert "SWARM_API_TOKEN" in answer.json()["detail"]
        posted = client.post("/v1/tasks", json={"text": "hi"}, headers={"host": "evil.example"})
        assert posted.status_code == 421


def test_with_a_token_any_host_name_is_answered(locked: str) -> None:
    with httpx.Client(base_url=locked, timeout=10) as client:
        answer = client.get(
            "/v1/agents",
            headers={"host": "swarm.example.com", "Authorization": f"Bearer {TOKEN}"},
        )
        assert answer.status_code == 200
