"""SDK lifecycle: ``RunAnywhere.initialize()``, ``shutdown()`` and the active configuration."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .._version import __version__
from .config import SDKConfig
from .errors import InitializationError, SDKErrorCode
from .events import EventBus, SDKInitialized, SDKShutdown
from .logging import LogLevel, SDKLogger

_log = SDKLogger("RunAnywhere")


class RunAnywhereSDK:
    """The SDK's lifecycle; ``RunAnywhere`` is its one shared instance.

    Calling ``initialize`` is optional: the first feature that needs the
    configuration initializes with defaults (``RUNANYWHERE_*`` variables apply).
    Components register a cleanup when they load something; ``shutdown`` runs
    them in reverse order of registration.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._config: SDKConfig | None = None
        self._cleanups: list[tuple[str, Callable[[], None]]] = []

    @property
    def version(self) -> str:
        return __version__

    @property
    def events(self) -> EventBus:
        return EventBus.shared

    @property
    def is_initialized(self) -> bool:
        return self._config is not None

    @property
    def config(self) -> SDKConfig:
        """The active configuration, initializing with defaults on first use."""
        config = self._config
        return config if config is not None else self.initialize()

    def initialize(self, config: SDKConfig | None = None, **options: Any) -> SDKConfig:
        """Start the SDK with ``config`` or keyword options (see :class:`SDKConfig`).

        Idempotent and thread-safe: a second call with the same options returns
        the active configuration; different options need ``shutdown()`` first.
        """
        if config is not None and options:
            raise InitializationError("pass either an SDKConfig or keyword options, not both",
                                      code=SDKErrorCode.INVALID_CONFIGURATION)
        wanted = config if config is not None else SDKConfig.from_env(**options)
        with self._lock:
            if self._config is not None:
                if wanted != self._config and (config is not None or options):
                    raise InitializationError(
                        "RunAnywhere is already initialized with other options; call RunAnywhere.shutdown() first",
                        code=SDKErrorCode.ALREADY_INITIALIZED,
                        details={"active": self._config, "requested": wanted},
                    )
                return self._config
            if wanted.debug:
                SDKLogger.enable_console(LogLevel.DEBUG)
            self._config = wanted
        _log.info("initialized (home=%s, offline=%s, mirror=%s)", wanted.home, wanted.offline, wanted.mirror)
        self.events.emit(SDKInitialized(environment=wanted.environment.value))
        return wanted

    def add_cleanup(self, name: str, cleanup: Callable[[], None]) -> Callable[[], None]:
        """Run ``cleanup`` at shutdown (reverse order); returns a function that cancels it."""
        entry = (name, cleanup)
        with self._lock:
            self._cleanups.append(entry)

        def remove() -> None:
            with self._lock:
                if entry in self._cleanups:
                    self._cleanups.remove(entry)

        return remove

    def shutdown(self) -> None:
        """Release everything loaded, newest first; the SDK can be initialized again."""
        with self._lock:
            cleanups, self._cleanups = self._cleanups, []
            was_initialized = self._config is not None
            self._config = None
        for name, cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception:  # one failing component must not stop the others
                _log.error("cleanup of %s failed", name)
        if was_initialized:
            self.events.emit(SDKShutdown())


RunAnywhere = RunAnywhereSDK()
