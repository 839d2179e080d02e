"""Live voice over a WebSocket on the OpenAI Realtime protocol: ``/v1/realtime``, for ``openai``'s realtime client."""

from .config import RealtimeEngines
from .route import realtime_route

__all__ = ["RealtimeEngines", "realtime_route"]
