"""A throwaway PostgreSQL server for tests: `initdb` in a temporary folder, `pg_ctl start` on a free
loopback port, one fresh database per test, everything removed at the end.

    with TemporaryPostgres() as pg:
        url = pg.new_database()   # "postgresql+psycopg://postgres@127.0.0.1:PORT/swarm_1"

Needs PostgreSQL's server programs (Debian's `postgresql` package; `scripts/system_packages.sh`
installs it). As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root).
Raises `PostgresUnavailable` when the programs are missing, and `RuntimeError` with the server's
log when it does not start.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["PostgresUnavailable", "TemporaryPostgres", "find_pg_bin"]


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server programs (initdb, pg_ctl) are not installed."""


def find_pg_bin() -> Path:
    """The folder holding initdb and pg_ctl: $SWARM_PG_BIN, else the newest Debian install, else
    the PATH. Raises `PostgresUnavailable`."""
    env = os.environ.get("SWARM_PG_BIN")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major, reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).parent))
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    raise PostgresUnavailable(
        "PostgreSQL's server programs (initdb, pg_ctl) are not installed: "
        "run `sudo bash scripts/system_packages.sh` (Debian's `postgresql` package), "
        "or set SWARM_PG_BIN to the folder that holds them"
    )


def _major(folder: str) -> int:
    try:
        return int(Path(folder).parent.name)
    except ValueError:
        return 0


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, killed but not reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TemporaryPostgres:
    """A PostgreSQL server of its own, on 127.0.0.1, for as long as the `with` block lasts."""

    def __init__(self, folder: str | Path | None = None, *, port: int | None = None) -> None:
        self.bin = find_pg_bin()
        self._own_folder = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix="swarm-pg-"))
        self.data = self.folder / "data"
        self.port = port or _free_port()
        self.user = "postgres"
        self._as_root = os.geteuid() == 0
        self._names = itertools.count(1)
        self.started = False

    # ---- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> TemporaryPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:  # the server refuses root: run its programs as `postgres`
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check)

    def start(self) -> None:
        """initdb (trust auth on loopback only) and start the server; waits until it answers."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(self.folder, "postgres", "postgres")
            os.chmod(self.folder, 0o700)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.data), "-U", self.user, "--auth=trust",
                "--encoding=UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = self.folder / "server.log"
        done = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(log), "-o", options, "-w", "-t", "60",
            "start", check=False,
        )  # fmt: skip
        if done.returncode != 0:
            text = log.read_text() if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {done.stderr.strip()}\n{text[-2000:]}")
        self.started = True

    def stop(self) -> None:
        """Stop the server (fast mode) and remove its folder if this object made it."""
        if self.started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
            self.started = False
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would (for tests of a database that goes away);
        returns once it is gone, so that `start()` brings the server back on the same port."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 9)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            # Not reaped yet (its parent is init): its lock files would keep a new server out.
            pid_file.unlink(missing_ok=True)
            (self.folder / f".s.PGSQL.{self.port}.lock").unlink(missing_ok=True)
        self.started = False

    # ---- databases -----------------------------------------------------------------------

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        """A SQLAlchemy URL for `database` on this server."""
        return f"postgresql+{driver}://{self.user}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection string (for psycopg directly)."""
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={database}"

    def new_database(self, prefix: str = "swarm") -> str:
        """Create an empty database; returns its SQLAlchemy URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement with autocommit; returns its rows (empty for commands)."""
        import psycopg  # the `postgres` extra

        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(self.dsn(database), autocommit=True) as conn:
                    cur = conn.execute(sql.encode())
                    return cur.fetchall() if cur.description else []
            except psycopg.OperationalError:  # still starting
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
