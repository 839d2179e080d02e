"""SDKLogger: the reference SDK's levelled logger, on top of stdlib ``logging``.

Everything logs under the ``runanywhere`` logger, which has only a
``NullHandler``: the SDK is silent until the application configures logging
or calls :meth:`SDKLogger.enable_console` (``initialize(debug=True)`` does).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any, ClassVar

ROOT_LOGGER = "runanywhere"
_TRACE = 5
logging.addLevelName(_TRACE, "TRACE")
logging.getLogger(ROOT_LOGGER).addHandler(logging.NullHandler())


class LogLevel(enum.IntEnum):
    """Reference SDK levels (Trace=0 ... Fatal=5)."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARNING = 3
    ERROR = 4
    FATAL = 5

    @property
    def stdlib(self) -> int:
        return _TO_STDLIB[self]


_TO_STDLIB = {
    LogLevel.TRACE: _TRACE,
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
    LogLevel.FATAL: logging.CRITICAL,
}


class SDKLogger:
    """A category logger: ``SDKLogger("ModelManager").info("pulled %s", model_id)``."""

    _console: ClassVar[logging.Handler | None] = None

    def __init__(self, category: str) -> None:
        self.category = category
        self._logger = logging.getLogger(f"{ROOT_LOGGER}.{category}")

    def trace(self, msg: str, *args: Any) -> None:
        self._logger.log(_TRACE, msg, *args)

    def debug(self, msg: str, *args: Any) -> None:
        self._logger.debug(msg, *args)

    def info(self, msg: str, *args: Any) -> None:
        self._logger.info(msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        self._logger.warning(msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        self._logger.error(msg, *args)

    def fatal(self, msg: str, *args: Any) -> None:
        self._logger.critical(msg, *args)

    def call_safely(self, callback: Callable[..., object] | None, *args: Any, what: str = "callback") -> None:
        """Call a user's callback (None: nothing); its exception is logged here, never raised into the SDK's work."""
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            self._logger.exception("%s %r failed", what, callback)

    @staticmethod
    def set_level(level: LogLevel) -> None:
        """Set the minimum level of every SDK logger."""
        logging.getLogger(ROOT_LOGGER).setLevel(LogLevel(level).stdlib)

    @staticmethod
    def get_level() -> LogLevel:
        stdlib = logging.getLogger(ROOT_LOGGER).getEffectiveLevel()
        return min(LogLevel, key=lambda lvl: abs(lvl.stdlib - stdlib))

    @classmethod
    def enable_console(cls, level: LogLevel = LogLevel.DEBUG) -> None:
        """Print SDK logs to stderr as ``[RunAnywhere:<category>] message``."""
        root = logging.getLogger(ROOT_LOGGER)
        if cls._console is None:
            handler = logging.StreamHandler()
            handler.setFormatter(_CategoryFormatter())
            root.addHandler(handler)
            cls._console = handler
        cls.set_level(level)

    @classmethod
    def disable_console(cls) -> None:
        if cls._console is not None:
            logging.getLogger(ROOT_LOGGER).removeHandler(cls._console)
            cls._console = None


class _CategoryFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        category = record.name.removeprefix(ROOT_LOGGER).lstrip(".") or "SDK"
        return f"[RunAnywhere:{category}] {record.levelname.lower()}: {record.getMessage()}"
