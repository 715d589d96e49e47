"""The LLM room: a client for any OpenAI-compatible chat endpoint, behind one-method backends
(live HTTP, replay from recordings, scripted), and `LLMAgent` for the common agent.
"""

from swarm.llm.agent import LLMAgent
from swarm.llm.backend import Backend, LLMBackend
from swarm.llm.client import LLM, ChatStream
from swarm.llm.config import EndpointConfig
from swarm.llm.http import HTTPBackend
from swarm.llm.redaction import redact
from swarm.llm.replay import RecordingBackend, ReplayBackend, request_hash
from swarm.llm.routed import RoutedBackend
from swarm.llm.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    FunctionCall,
    Message,
    ToolCall,
    Usage,
    json_format,
)

__all__ = [
    "LLM",
    "Backend",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "ChatStream",
    "Choice",
    "EndpointConfig",
    "FunctionCall",
    "HTTPBackend",
    "LLMAgent",
    "LLMBackend",
    "Message",
    "RecordingBackend",
    "ReplayBackend",
    "RoutedBackend",
    "ToolCall",
    "Usage",
    "json_format",
    "redact",
    "request_hash",
]
