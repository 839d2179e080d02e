"""The local OpenAI-compatible HTTP server: ``create_app(ServerConfig(...))`` gives a Starlette app.

Imported only by ``runanywhere serve`` (and tests), never by ``import runanywhere``.
"""

from .app import create_app
from .config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
