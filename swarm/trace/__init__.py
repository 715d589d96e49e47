"""The trace store: runs, tasks, routing decisions, spans and feedback, in any SQLAlchemy
database.
"""

from swarm.trace.schema import SCHEMA_VERSION
from swarm.trace.store import DEFAULT_DB_URL, TraceStore

__all__ = ["DEFAULT_DB_URL", "SCHEMA_VERSION", "TraceStore"]
