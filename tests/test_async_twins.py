"""Every blocking public method has an ``a``-prefixed async twin with the same parameters.

The test walks the classes exported from ``runanywhere``; a method that needs
no twin (it never blocks for long, or it is a value conversion) is listed in
NO_TWIN with the reason.
"""

from __future__ import annotations

import enum
import inspect
from typing import Any

import runanywhere

# Classes whose methods all return at once: value types, configuration, logging and event plumbing.
VALUE_OR_PLUMBING = {
    "Audio", "Capabilities", "Catalog", "GenerationOptions", "ModelEntry", "SDKConfig", "SDKLogger", "StoredModel",
    "ToolCall", "ToolDefinition", "ToolResult", "GenerationRequest", "LocalModel",
    "Conversation", "VoicePipelineOptions", "VoiceAgentOptions", "VoicePipelineCallbacks", "VoiceAgentCallbacks",
    "EventBus",  # emit/on/off are synchronous by design; async consumers use `async for ev in bus.stream()`
    "VLMResult", "FrameDescription", "Segment",
}

NO_TWIN = {
    # Non-blocking control: they set a flag or cancel a token and return.
    "CancelToken": {"cancel", "child", "on_cancel", "raise_if_cancelled",
                    "wait"},  # a thread-side sleep; async code awaits the task that the token cancels
    # drain() takes the items already produced, without waiting (a consumer that fell behind catches up).
    "GenerationStream": {"cancel", "drain", "wait"},  # wait's twin is aresult(), which every result stream has
    "SegmentStream": {"cancel", "drain"}, "SynthesisStream": {"cancel", "drain"},
    "EmbeddingGenerator": {"cancel", "cosine_similarity"},  # cosine_similarity: one dot product
    "TextGenerator": {"cancel", "start"},  # start returns its stream at once (read it with `async for`)
    "VisionLanguageModel": {"cancel", "start"}, "VLMStream": {"cancel", "drain", "wait"},
    "VideoCapture": {"close"},  # releases the device or file handle
    "TextToSpeech": {"cancel"}, "VoicePipeline": {"cancel", "events"}, "VoiceAgent": {"open_session", "stop"},
    # A pushed voice session: feed() runs the VAD inline (~0.15 ms a window) and starts a turn on a thread of
    # its own; stop() sets a flag; events() is already an async stream. flush() waits for a turn: aflush().
    "VoiceSession": {"close", "events", "feed", "stop", "subscribe"},
    "SpeechToText": {"cancel", "create_stream"},  # create_stream only sets up a session
    # A live transcription session: accept() queues the decoding on the worker and returns; partial() reads text.
    "TranscriptionStream": {"accept", "close", "partial"},
    # Voice activity detection runs inline on the caller's thread by design (a 32 ms window costs ~0.15 ms,
    # less than a hop to a worker; see features/vad.py), so feeding it from a coroutine does not block the loop.
    "VoiceActivityDetector": {"cancel", "create_session", "flush", "on_speech_activity", "pop_speech_segment",
                              "process_samples", "reset", "segments"},
    "VADSession": {"close", "flush", "on_speech_activity", "open_segment", "pop_speech_segment", "process_samples",
                   "reset", "segments"},
    # Registering tools is bookkeeping; start_run returns at once (its rounds are streams with `async for`).
    "ToolCaller": {"clear_tools", "declare_tool", "register_tool", "start_run", "unregister_tool"},
    "ToolRun": {"result"},  # the loop's outcome, built from rounds already read
    "CallSplitter": {"feed", "finish"},  # parsing text already generated
    "StructuredOutputGenerator": {"extract_json", "validate"},  # parsing and schema checks of a given text
    # Catalog and store bookkeeping (metadata, one directory removal); the slow ones (pull, resolve, verify) have twins.
    "ModelLibrary": {"clear", "defaults", "delete", "get", "info", "list_models", "pin", "plan_eviction", "register",
                     "register_file", "storage_info",
                     "derive"},  # called on a model's worker while it loads; aload_model is the async path
    # The store behind ModelLibrary; async callers use ModelLibrary's twins (apull, averify, aclean).
    "ModelStore": {"add_derived", "clean", "clear", "commit", "delete", "disk_free_bytes", "ensure_space", "evict",
                   "get", "info", "is_pinned", "keep_in_memory", "leftovers", "models", "pin", "plan_eviction",
                   "pull_lock", "require", "touch", "used_bytes", "verify"},
    "FileLock": {"acquire", "holder", "release", "try_acquire"},  # a pin: taken once by ModelLibrary.pin, then held
    # initialize reads the environment; shutdown runs at process exit, from synchronous code.
    "RunAnywhereSDK": {"add_cleanup", "initialize", "shutdown"},
    # Audio devices: a capture is read with `async for chunk in capture`; AudioPlayback.wait's twin is until_done().
    "AudioCapture": {"clear", "close", "drain", "read", "start", "stop"},
    "AudioPlayback": {"close", "dispose", "play", "set_volume", "stop", "wait"},
}


def _public_classes() -> list[type]:
    classes = []
    for name in runanywhere.__all__:
        obj = getattr(runanywhere, name)
        if (inspect.isclass(obj)
                and not issubclass(obj, BaseException | runanywhere.SDKEvent | runanywhere.VoiceEvent | enum.Enum)
                and name not in VALUE_OR_PLUMBING):
            classes.append(obj)
    return classes


def _methods(cls: type) -> dict[str, Any]:
    return {name: value for name, value in inspect.getmembers(cls)
            if not name.startswith("_") and inspect.isroutine(value)}


def _is_async(function: Any) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def _shape(function: Any) -> list[tuple[str, Any, Any]]:
    """Parameter names, kinds and defaults (annotations may differ: an async source is also accepted)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_every_blocking_public_method_has_an_async_twin() -> None:
    missing = []
    for cls in _public_classes():
        methods = _methods(cls)
        for name, function in methods.items():
            is_twin = name.startswith("a") and name[1:] in methods
            if is_twin or _is_async(function) or name in NO_TWIN.get(cls.__name__, ()):
                continue
            if f"a{name}" not in methods:
                missing.append(f"{cls.__name__}.{name}")
    assert missing == []


def test_twins_take_the_same_parameters() -> None:
    differ = []
    pairs = 0
    for cls in _public_classes():
        methods = _methods(cls)
        for name, function in methods.items():
            twin = methods.get(f"a{name}")
            if twin is None or _is_async(function):
                continue
            pairs += 1
            if _shape(function) != _shape(twin):
                differ.append(f"{cls.__name__}.{name}: {_shape(function)} != {_shape(twin)}")
    assert differ == []
    assert pairs >= 25  # the walk really finds the twins (load_model, generate, transcribe, pull, ...)


def test_the_allow_list_names_only_real_methods() -> None:
    classes = {cls.__name__: cls for cls in _public_classes()}
    stale = [f"{owner}.{name}" for owner, names in NO_TWIN.items() for name in names
             if owner not in classes or name not in _methods(classes[owner])]
    assert stale == []
    exported = set(runanywhere.__all__)
    assert exported >= VALUE_OR_PLUMBING
