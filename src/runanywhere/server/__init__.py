"""The local server: an OpenAI-compatible HTTP API and the live voice WebSocket, in front of the in-process engines."""
