"""A transcription in each of OpenAI's ``response_format`` shapes: json, text, srt, vtt, verbose_json."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, PlainTextResponse, Response

from .. import TranscriptionResult

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("segment", "word")


def transcript_response(result: TranscriptionResult, fmt: str, task: str = "transcribe",
                        granularities: frozenset[str] = frozenset()) -> Response:
    if fmt == "json":
        return JSONResponse({"text": result.text})
    if fmt == "text":
        return PlainTextResponse(result.text)
    if fmt == "srt":
        return PlainTextResponse(srt(result), media_type="application/x-subrip")
    if fmt == "vtt":
        return PlainTextResponse(vtt(result), media_type="text/vtt")
    return JSONResponse(verbose(result, task, granularities))


def verbose(result: TranscriptionResult, task: str, granularities: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The text, language and duration; each segment with its times and confidence (unless only ``word`` is
    asked for, as OpenAI does), and each word with its times and probability when ``word`` is."""
    body: dict[str, Any] = {"task": task, "language": result.language,
                            "duration": round(result.audio_duration_s, 3), "text": result.text}
    if not granularities or "segment" in granularities:
        body["segments"] = [{"id": i, "start": round(s.start_s, 3), "end": round(s.end_s, 3), "text": s.text,
                             "confidence": round(s.confidence, 4)} for i, s in enumerate(result.segments)]
    if "word" in granularities:
        body["words"] = [{"word": w.text, "start": round(w.start_s, 3), "end": round(w.end_s, 3),
                          "probability": round(w.probability, 4)} for s in result.segments for w in s.words]
    return body


def srt(result: TranscriptionResult) -> str:
    blocks = [f"{i}\n{_clock(s.start_s, ',')} --> {_clock(s.end_s, ',')}\n{s.text}\n"
              for i, s in enumerate(result.segments, 1)]
    return "\n".join(blocks)


def vtt(result: TranscriptionResult) -> str:
    blocks = [f"{_clock(s.start_s, '.')} --> {_clock(s.end_s, '.')}\n{s.text}\n" for s in result.segments]
    return "WEBVTT\n\n" + "\n".join(blocks)


def _clock(seconds: float, mark: str) -> str:
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{mark}{ms:03d}"
