"""The trace store's tables (SQLAlchemy 2.0 declarative): runs, tasks, routing decisions, spans,
feedback, and the schema version. Times are wall-clock seconds since the epoch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateColumn

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ApprovalRow",
    "Base",
    "DecisionRow",
    "FeedbackRow",
    "MetaRow",
    "RunRow",
    "SpanRow",
    "TaskRow",
    "WorkerRow",
]

SCHEMA_VERSION = 2
"""Bump when a table changes shape, with the step from the last version in `MIGRATIONS`.

1 -> 2: task leases (`tasks.lease_owner`, `tasks.lease_expires_at`), the `workers` and
`approvals` tables, and the `waiting` status."""

MIGRATIONS: dict[int, tuple[str, ...]] = {
    # from version N: the statements that make it N + 1 (new tables come from `create_all`)
    1: (
        "ALTER TABLE tasks ADD COLUMN lease_owner VARCHAR(64)",
        "ALTER TABLE tasks ADD COLUMN lease_expires_at FLOAT",
    ),
}


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, Any: JSON}


class MetaRow(Base):
    __tablename__ = "swarm_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="run")
    agents: Mapped[str | None] = mapped_column(Text)
    """How to load the run's agents again (a module path), for `swarm resume`."""
    router: Mapped[str | None] = mapped_column(Text)
    """How to load the run's router again (an artifact path or a testing router's name)."""
    router_version: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)


def _partial(name: str, column: str, where: str) -> Index:
    """An index over the few rows that match `where`: most writes never touch it."""
    return Index(name, column, sqlite_where=text(where), postgresql_where=text(where))


class TaskRow(Base):
    __tablename__ = "tasks"
    # Partial indexes and no rowid (the time-ordered id is the clustered key): a task insert
    # touches two B-trees instead of six, which is most of the traced scheduler's write cost.
    __table_args__ = (
        _partial("ix_tasks_unfinished", "status", "status IN ('queued', 'running', 'waiting')"),
        _partial("ix_tasks_lease", "lease_owner", "lease_owner IS NOT NULL"),
        _partial("ix_tasks_parent", "parent_id", "parent_id IS NOT NULL"),
        _partial("ix_tasks_session", "session_id", "session_id IS NOT NULL"),
        Index("ix_tasks_run", "run_id"),
        {"sqlite_with_rowid": False},
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(32))
    parent_id: Mapped[str | None] = mapped_column(String(32))
    session_id: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    deadline: Mapped[float | None] = mapped_column(Float)
    forced_agent: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    agent: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    hops: Mapped[list[Any] | None] = mapped_column()
    output: Mapped[Any | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    """The worker (`WorkerRow.id`) that runs the task now; NULL: queued for any worker."""
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    """When the lease lapses unless renewed: after it, another worker may take the task."""


class WorkerRow(Base):
    """A process that runs tasks (`swarm worker`, `swarm run`, `swarm serve`) and holds leases."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="worker")
    host: Mapped[str] = mapped_column(String(256))
    pid: Mapped[int] = mapped_column(Integer)
    agents: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)
    stopped_at: Mapped[float | None] = mapped_column(Float)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApprovalRow(Base):
    """A question an agent put to a person (`ctx.approve`), and the answer once given."""

    __tablename__ = "approvals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(32), index=True)
    run_id: Mapped[str | None] = mapped_column(String(32))
    agent: Mapped[str | None] = mapped_column(String(128))
    question: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    """waiting, approved, denied or expired."""
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float)
    decided_at: Mapped[float | None] = mapped_column(Float)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)


class DecisionRow(Base):
    __tablename__ = "routing_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(32), index=True)
    agent: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    candidates: Mapped[list[Any]] = mapped_column(default=list)
    router_version: Mapped[str | None] = mapped_column(String(64))
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[float] = mapped_column(Float)
    rule: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """Which router rule decided (`Decision.rule`); NULL for forced decisions and older rows."""


class SpanRow(Base):
    __tablename__ = "spans"
    __table_args__ = ({"sqlite_with_rowid": False},)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(32), index=True)
    run_id: Mapped[str | None] = mapped_column(String(32))
    parent_id: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(256))
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="ok")
    error: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)


class FeedbackRow(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    """good, bad, or correction (then `agent` names the right agent)."""
    agent: Mapped[str | None] = mapped_column(String(128))
    routed_agent: Mapped[str | None] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    router_version: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    session_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)


@compiles(CreateColumn, "postgresql")
def _text_on_postgres(create: CreateColumn, compiler: Any, **kw: Any) -> str:
    """The store's VARCHAR(n) columns are TEXT on PostgreSQL, which would refuse a longer value
    (an agent, span or session name) that SQLite keeps: the lengths say what is expected, not a
    limit. PostgreSQL's manual: no performance difference between the two."""
    sql: str = compiler.visit_create_column(create, **kw)
    column = create.element
    kind = column.type
    if column.table is not None and column.table.metadata is Base.metadata:
        if type(kind) is String and kind.length:
            sql = sql.replace(f"VARCHAR({kind.length})", "TEXT", 1)
    return sql
