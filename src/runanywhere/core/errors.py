"""One exception tree for the whole SDK.

Every error is an :class:`SDKError` with a numeric :class:`SDKErrorCode` (the
reference SDK's codes) and a message that says what to do. Subclasses also
derive from the natural stdlib base, so ``except FileNotFoundError`` or
``except ValueError`` work the Python way.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class SDKErrorCode(IntEnum):
    """Numeric error codes, shared with the reference SDK where it has one."""

    SUCCESS = 0
    # initialization
    NOT_INITIALIZED = -100
    ALREADY_INITIALIZED = -101
    INVALID_CONFIGURATION = -102
    INITIALIZATION_FAILED = -103
    # model
    MODEL_NOT_FOUND = -110
    MODEL_LOAD_FAILED = -111
    MODEL_INVALID_FORMAT = -112
    MODEL_NOT_LOADED = -113
    MODEL_ALREADY_LOADED = -114
    # generation
    GENERATION_FAILED = -130
    GENERATION_CANCELLED = -131
    GENERATION_TIMEOUT = -132
    INVALID_PROMPT = -133
    CONTEXT_LENGTH_EXCEEDED = -134
    # network
    NETWORK_ERROR = -150
    NETWORK_TIMEOUT = -151
    AUTHENTICATION_FAILED = -152
    OFFLINE_MODE = -153
    # download
    DOWNLOAD_FAILED = -160
    DOWNLOAD_CANCELLED = -161
    CHECKSUM_MISMATCH = -162
    ARCHIVE_INVALID = -163
    # storage
    STORAGE_ERROR = -180
    INSUFFICIENT_STORAGE = -181
    FILE_NOT_FOUND = -182
    FILE_WRITE_FAILED = -183
    STORE_CORRUPT = -184
    # input
    INVALID_PARAMETER = -220
    INVALID_INPUT = -221
    # component state
    COMPONENT_NOT_READY = -230
    COMPONENT_BUSY = -231
    INVALID_STATE = -232
    CANCELLED = -240
    # backend
    BACKEND_NOT_AVAILABLE = -600
    BACKEND_ERROR = -601


class SDKError(Exception):
    """Base of every error the SDK raises: a code, a message, optional details."""

    default_code: SDKErrorCode = SDKErrorCode.BACKEND_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: SDKErrorCode | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.details = details

    def __str__(self) -> str:
        return f"[{self.code.name}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.name}, message={self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps errors picklable across processes despite keyword-only args.
        return (_rebuild, (type(self), self.message, self.code, self.details))


def _rebuild(cls: type[SDKError], message: str, code: SDKErrorCode, details: Any) -> SDKError:
    return cls(message, code=code, details=details)


class InitializationError(SDKError):
    default_code = SDKErrorCode.INITIALIZATION_FAILED


class ConfigurationError(InitializationError, ValueError):
    default_code = SDKErrorCode.INVALID_CONFIGURATION


class ModelError(SDKError):
    default_code = SDKErrorCode.MODEL_LOAD_FAILED


class ModelNotFoundError(ModelError, LookupError):
    default_code = SDKErrorCode.MODEL_NOT_FOUND


class ModelFormatError(ModelError, ValueError):
    default_code = SDKErrorCode.MODEL_INVALID_FORMAT


class ModelNotLoadedError(ModelError, RuntimeError):
    default_code = SDKErrorCode.MODEL_NOT_LOADED


class GenerationError(SDKError):
    default_code = SDKErrorCode.GENERATION_FAILED


class ContextLengthError(GenerationError, ValueError):
    default_code = SDKErrorCode.CONTEXT_LENGTH_EXCEEDED


class CancelledError(SDKError):
    """The caller cancelled the work (a download, a load, a generation)."""

    default_code = SDKErrorCode.CANCELLED


class InvalidInputError(SDKError, ValueError):
    default_code = SDKErrorCode.INVALID_INPUT


class DownloadError(SDKError):
    default_code = SDKErrorCode.DOWNLOAD_FAILED


class NetworkError(DownloadError, ConnectionError):
    default_code = SDKErrorCode.NETWORK_ERROR


class NetworkTimeoutError(NetworkError, TimeoutError):
    default_code = SDKErrorCode.NETWORK_TIMEOUT


class OfflineModeError(NetworkError):
    default_code = SDKErrorCode.OFFLINE_MODE


class ChecksumMismatchError(DownloadError, ValueError):
    default_code = SDKErrorCode.CHECKSUM_MISMATCH


class ArchiveError(DownloadError, ValueError):
    default_code = SDKErrorCode.ARCHIVE_INVALID


class StorageError(SDKError, OSError):
    default_code = SDKErrorCode.STORAGE_ERROR


class InsufficientStorageError(StorageError):
    default_code = SDKErrorCode.INSUFFICIENT_STORAGE


class SDKFileNotFoundError(StorageError, FileNotFoundError):
    default_code = SDKErrorCode.FILE_NOT_FOUND


class StoreCorruptError(StorageError):
    default_code = SDKErrorCode.STORE_CORRUPT


class InvalidStateError(SDKError, RuntimeError):
    default_code = SDKErrorCode.INVALID_STATE


class BackendError(SDKError):
    default_code = SDKErrorCode.BACKEND_ERROR


class BackendNotAvailableError(BackendError, ImportError):
    """An optional engine is not installed; the message names the extra to install."""

    default_code = SDKErrorCode.BACKEND_NOT_AVAILABLE
