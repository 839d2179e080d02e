"""Audio devices through PortAudio (``sounddevice``, the optional ``audio`` extra): list, resolve, pick a rate.

Shared by :mod:`.capture` (input) and :mod:`.playback` (output); ``kind`` is
``"input"`` or ``"output"`` throughout. sounddevice is imported on first use,
so ``import runanywhere`` works without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..core.errors import BackendError, InvalidInputError

Device = int | str | None
"""A PortAudio device: its index, a substring of its name, or None for the system default."""


def sounddevice() -> ModuleType:
    """Import sounddevice (and so PortAudio) on first use, with a clear error when either is missing."""
    from ..backends import require_engine

    return require_engine("sounddevice", "audio")


@dataclass(frozen=True)
class AudioDevice:
    """One PortAudio device as :func:`list_input_devices` / ``list_output_devices`` report it."""

    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float
    is_default_input: bool
    is_default_output: bool


def list_devices(kind: str) -> list[AudioDevice]:
    """The devices that can record (``kind="input"``) or play (``"output"``)."""
    sd = sounddevice()
    try:
        devices = sd.query_devices()
        apis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise BackendError(f"cannot list audio devices: {exc}") from exc
    default_in, default_out = (int(i) for i in sd.default.device)
    found = []
    for info in devices:
        if int(info[f"max_{kind}_channels"]) <= 0:
            continue
        index = int(info["index"])
        found.append(
            AudioDevice(
                index=index,
                name=str(info["name"]),
                host_api=str(apis[int(info["hostapi"])]["name"]),
                max_input_channels=int(info["max_input_channels"]),
                max_output_channels=int(info["max_output_channels"]),
                default_sample_rate=float(info["default_samplerate"]),
                is_default_input=index == default_in,
                is_default_output=index == default_out,
            )
        )
    return found


def list_input_devices() -> list[AudioDevice]:
    """Devices that can record (PortAudio's list, taken when sounddevice was first imported)."""
    return list_devices("input")


def list_output_devices() -> list[AudioDevice]:
    """Devices that can play (PortAudio's list, taken when sounddevice was first imported)."""
    return list_devices("output")


def resolve_device(device: Device, kind: str) -> dict[str, Any]:
    """PortAudio's info dict of ``device`` for ``kind`` ("input" or "output"), or a clear SDKError.

    A name matches by substring (PortAudio's rule); no match, several matches,
    a device without that direction or a bad index is an ``InvalidInputError``
    that lists the devices there are; no default device at all is a
    ``BackendError`` (no sound card and no audio server).
    """
    sd = sounddevice()
    if device is not None and (isinstance(device, bool) or not isinstance(device, int | str)):
        raise InvalidInputError(f"device must be an index, a name or None, got {device!r}")
    try:
        info: dict[str, Any] = dict(sd.query_devices(device, kind=kind))
    except (ValueError, sd.PortAudioError) as exc:
        if device is None:
            what = "Microphone access failed" if kind == "input" else "Audio output failed"
            raise BackendError(
                f"{what}: there is no default {kind} device (no sound card and no audio server?): {exc}",
                details={"kind": kind},
            ) from exc
        try:
            names = ", ".join(f"{d.index} {d.name!r}" for d in list_devices(kind)) or "none"
        except BackendError:
            names = "unknown"
        raise InvalidInputError(
            f"no {kind} device {device!r} ({exc}); {kind} devices: {names}",
            details={"device": device, "kind": kind},
        ) from exc
    if int(info[f"max_{kind}_channels"]) <= 0:
        raise InvalidInputError(f"device {info['name']!r} has no {kind} channels", details={"device": device})
    return info


def pick_stream_rate(sd: ModuleType, kind: str, device: int, wanted: int, channels: int, default: float) -> int:
    """``wanted`` if the device opens at that rate, else the device's default rate (the caller resamples)."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=device, channels=channels, dtype="float32", samplerate=wanted)
        return wanted
    except (ValueError, sd.PortAudioError):
        return round(default)
