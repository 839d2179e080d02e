"""How the server runs: where it binds, who may call it, how much it accepts, which models it serves."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..core.errors import ConfigurationError
from ..core.validation import positive_int

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """True for a loopback address or ``localhost`` (a name bound elsewhere is not)."""
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerConfig:
    """Safe by default: loopback only, a Host allowlist there, same-origin only, bounded bodies and queues.

    ``api_key`` is required when ``host`` is not a loopback address. ``models`` are loaded at start-up
    (``/health`` says 503 until they are); any other catalog model loads on its first request.
    ``allowed_hosts`` adds Host header names to the loopback ones; ``cors_origins`` lists the other
    origins (``https://app.example``) a browser may call from. ``max_queue`` bounds the requests waiting
    for one model (more get 429 with ``Retry-After``). ``remote_images`` lets chat requests name images by
    ``https://`` URL, which the server then fetches from public addresses only (:mod:`.remote_images`).
    ``n_ctx`` is each chat conversation's context; ``max_sequences`` how many chat generations one model
    runs at once (None: chosen from the CPU and ``n_ctx``, see ``TextGenerator.load_model``).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    models: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 4 * 1024 * 1024
    max_upload_bytes: int = 25 * 1024 * 1024
    max_queue: int = 32
    n_ctx: int = 4096
    max_sequences: int | None = None
    remote_images: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "allowed_hosts", tuple(h.lower() for h in self.allowed_hosts))
        object.__setattr__(self, "cors_origins", tuple(o.rstrip("/").lower() for o in self.cors_origins))
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"port must be 0-65535, got {self.port}")
        for name in ("max_body_bytes", "max_upload_bytes", "max_queue", "n_ctx"):
            positive_int(name, getattr(self, name), error=ConfigurationError)
        if self.max_sequences is not None:
            positive_int("max_sequences", self.max_sequences, error=ConfigurationError)
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigurationError("the API key is empty; give a real one or none")
        if not self.loopback and not self.api_key:
            raise ConfigurationError(f"binding to {self.host} (not loopback) needs an API key: pass --api-key or "
                                     "set RUNANYWHERE_API_KEY")

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)
