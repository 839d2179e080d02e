"""Piper voices through piper-tts: the one module that imports ``piper`` (and its onnxruntime session).

Why piper-tts and not sherpa-onnx: both speak a Piper voice word-perfectly (a
Whisper tiny.en round trip reads them back exactly), but piper-tts loads the
``.onnx`` + ``.onnx.json`` pair users download as it is, bundles espeak-ng and
its data, and was 10-15 % faster at the same thread count here; sherpa-onnx
1.13.8 first needs a rewritten model (sherpa metadata) and a ``tokens.txt``.

Text goes through espeak-ng (piper's phonemizer) sentence by sentence; each
sentence's phoneme ids run through our own onnxruntime session, so we choose
the thread count (idle threads sleep rather than spin, since speech shares the
CPU with the LLM and STT of a voice loop), keep the model's own level (no
per-sentence peak normalisation, so chunks of one text sound alike however it
is cut), and can abort a running sentence: cancelling sets the run's
``terminate`` flag.
A config that does not match the model (a phoneme id or speaker beyond the
model's tables, missing inputs) fails at load with a :class:`ModelFormatError`.
The sherpa-onnx layout of the same voices (``model.onnx`` with metadata +
``tokens.txt``, as in the reference's ``vits-piper-*`` archives) loads too.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.cancel import CancelToken
from ..core.engines import WEIGHTS
from ..core.errors import BackendError, CancelledError, ModelFormatError, SDKFileNotFoundError
from . import require_engine
from .base import ModelFiles
from .onnx_session import first_line, open_session

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_BOS, _EOS, _PAD = "^", "$", "_"
_PHONEME_TYPES = ("espeak", "text")  # the others need downloads or extra packages at run time
_RATES = (8000, 48000)
MAX_PHONEMES = 400
"""Longest phoneme sequence run at once: VITS attention memory grows with its square."""

# Pictographs, dingbats, flags, skin tones, variation selectors, zero-width joiners and tag characters:
# espeak would read their names aloud ("grinning face"), which nobody wants from a chat reply.
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe00-\ufe0f\u200d\U000e0000-\U000e007f\u2b00-\u2bff]")


@dataclass(frozen=True)
class VoiceFiles:
    """Where a voice's parts are: the ONNX model and either its Piper config or a sherpa ``tokens.txt``."""

    model: Path
    config: Path | None
    tokens: Path | None


def find_voice(files: Sequence[Path]) -> VoiceFiles:
    """Pick the voice's files out of a model's file list (one ``.onnx`` and its ``.onnx.json``)."""
    models = [f for f in files if f.suffix == ".onnx"]
    if not models:  # given the .onnx.json: the model sits next to it
        models = [f.with_name(f.name[: -len(".json")]) for f in files if f.name.endswith(".onnx.json")][:1]
        if not models:
            raise ModelFormatError("no .onnx voice model among the files: " + ", ".join(f.name for f in files[:5]))
        if not models[0].is_file():
            raise SDKFileNotFoundError(f"voice model not found: {models[0]}", details={"path": str(models[0])})
    if len(models) > 1:
        raise ModelFormatError("several .onnx files; name the voice's .onnx file: " + ", ".join(m.name for m in models))
    model = models[0]
    config = model.with_name(model.name + ".json")
    if config.is_file():
        return VoiceFiles(model, config, None)
    tokens = model.with_name("tokens.txt")
    if tokens.is_file():
        return VoiceFiles(model, None, tokens)
    raise SDKFileNotFoundError(f"voice config not found: {config} (Piper voices come as .onnx + .onnx.json)",
                               details={"path": str(config)})


def speakable(text: str) -> str:
    """Text espeak can read safely: no emoji, control or unassigned characters, no ``[[phoneme]]`` blocks."""
    text = _EMOJI.sub(" ", unicodedata.normalize("NFC", text))
    out = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc" or char in "\u2028\u2029":
            out.append(" ")  # NUL would crash espeak; newlines and tabs are spaces to it anyway
        elif category not in ("Cs", "Co", "Cn", "Cf"):
            out.append(char)
    return "".join(out).replace("[[", "[ [").replace("]]", "] ]")


def open_piper(files: ModelFiles, **options: Any) -> PiperEngine:
    """The speech-synthesis factory: the catalog's ``weights`` + ``config`` (or sherpa ``tokens``) files,
    or a voice found among the files of a path."""
    if files.has_role("config") or files.has_role("tokens"):
        voice = VoiceFiles(files.file(WEIGHTS), *(files.file(r) if files.has_role(r) else None
                                                  for r in ("config", "tokens")))
    else:
        voice = find_voice(files.files or (files.path,))
    return PiperEngine(voice, **options)


class PiperEngine:
    """One Piper voice: espeak-ng phonemes in, float32 audio at the voice's rate out."""

    def __init__(self, voice: VoiceFiles, *, threads: int | None = None, variation: float = 1.0) -> None:
        piper = require_engine("piper")
        ort = require_engine("onnxruntime")
        if not voice.model.is_file():
            raise SDKFileNotFoundError(f"voice model not found: {voice.model}", details={"path": str(voice.model)})
        self.session = open_session(ort, voice.model, threads)
        data = _read_config(voice.config) if voice.config else _sherpa_config(self.session, voice)
        _check_config(data, voice.model.name)
        self.config = piper.config.PiperConfig.from_dict(data)
        self.variation = variation  # scales the voice's sampling noise; 0: the same audio for the same text
        self.voice = piper.PiperVoice(session=self.session, config=self.config)
        self.id_map: Mapping[str, Sequence[int]] = self.config.phoneme_id_map
        inputs = {i.name for i in self.session.get_inputs()}
        if not {"input", "input_lengths", "scales"} <= inputs:
            raise ModelFormatError(f"{voice.model.name} is not a Piper VITS model (its inputs are {sorted(inputs)})")
        self._has_sid = "sid" in inputs
        self._ort = ort
        if self._has_sid != (self.num_speakers > 1):
            raise ModelFormatError(f"{voice.model.name}: the config says {self.num_speakers} speaker(s) but the "
                                   f"model {'takes' if self._has_sid else 'has no'} speaker input")
        self._probe(voice.model.name)

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def num_speakers(self) -> int:
        return int(self.config.num_speakers)

    @property
    def speakers(self) -> tuple[str, ...]:
        """The config's speaker names by id; the ids as names where it gives none."""
        names = {number: name for name, number in self.config.speaker_id_map.items()}
        return tuple(names.get(i, str(i)) for i in range(self.num_speakers))

    @property
    def speed_range(self) -> tuple[float, float]:
        """Any speed: it only divides the voice's length scale."""
        return (0.0, math.inf)

    def synthesize(self, text: str, *, speaker_id: int = 0, speed: float = 1.0,
                   cancel: CancelToken | None = None) -> Iterator[NDArray[np.float32]]:
        """Audio for ``text``, one array per sentence (or part of an over-long one).

        ``speed`` divides the voice's length scale (2.0 speaks twice as fast).
        Cancelling stops before the next sentence and aborts the one running
        (``CancelledError``).
        """
        for phonemes in self._phonemize(speakable(text)):
            for part in _split_phonemes([p for p in phonemes if p in self.id_map]):
                if cancel is not None:
                    cancel.raise_if_cancelled("speech synthesis")
                yield self._run(self.voice.phonemes_to_ids(part), speaker_id, speed, cancel)

    def close(self) -> None:
        del self.voice, self.session

    # ------------------------------------------------------------ internals
    def _phonemize(self, text: str) -> list[list[str]]:
        if not text.strip():
            return []
        try:
            return list(self.voice.phonemize(text))
        except (RuntimeError, ValueError) as exc:
            raise ModelFormatError(f"espeak-ng cannot phonemize for voice {self.config.espeak_voice!r}: {exc}") from exc

    def _run(self, ids: list[int], speaker_id: int, speed: float, cancel: CancelToken | None) -> NDArray[np.float32]:
        import numpy as np

        scales = (self.config.noise_scale * self.variation, self.config.length_scale / speed,
                  self.config.noise_w_scale * self.variation)
        options = self._ort.RunOptions()
        if cancel is not None:
            cancel.on_cancel(lambda: setattr(options, "terminate", True))
        try:
            audio = self.session.run(None, self._feeds(ids, scales, speaker_id), options)[0]
        except Exception as exc:  # onnxruntime's errors share no base class beyond Exception
            if cancel is not None and cancel.cancelled:
                raise CancelledError("speech synthesis was cancelled") from exc
            raise BackendError(f"onnxruntime failed to synthesize a sentence: {first_line(exc)}") from exc
        return np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)

    def _feeds(self, ids: list[int], scales: tuple[float, float, float], speaker_id: int) -> dict[str, Any]:
        import numpy as np

        feeds = {"input": np.asarray([ids], dtype=np.int64), "input_lengths": np.asarray([len(ids)], dtype=np.int64),
                 "scales": np.asarray(scales, dtype=np.float32)}
        if self._has_sid:
            feeds["sid"] = np.asarray([speaker_id], dtype=np.int64)
        return feeds

    def _probe(self, name: str) -> None:
        """Run the highest phoneme id and speaker once: a config/model mismatch fails here, not mid-speech."""
        top = max(max(ids) for ids in self.id_map.values())
        ids = [*self.id_map[_BOS], *self.id_map[_PAD], top, *self.id_map[_PAD], *self.id_map[_EOS]]
        try:
            self.session.run(None, self._feeds(ids, (0.0, 1.0, 0.0), self.num_speakers - 1))
        except Exception as exc:
            raise ModelFormatError(f"{name} does not match its config (phoneme id {top}, "
                                   f"{self.num_speakers} speaker(s)): {first_line(exc)}") from exc
        self._phonemize("a")  # an espeak voice name the bundled data lacks fails here


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SDKFileNotFoundError(f"voice config not found: {path}", details={"path": str(path)})
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path.name} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path.name} must hold a JSON object")
    return data


def _sherpa_config(session: Any, voice: VoiceFiles) -> dict[str, Any]:
    """A Piper config rebuilt from a sherpa-onnx layout: model metadata + ``tokens.txt`` (``symbol id`` lines)."""
    if voice.tokens is None:
        raise ModelFormatError(f"{voice.model.name} has no .onnx.json and no tokens.txt")
    meta = dict(session.get_modelmeta().custom_metadata_map)
    if meta.get("comment") != "piper" or "sample_rate" not in meta:
        raise ModelFormatError(f"{voice.model.name} has no .onnx.json and no sherpa-onnx Piper metadata")
    id_map: dict[str, list[int]] = {}
    for line in voice.tokens.read_text(encoding="utf-8").splitlines():
        symbol, _, number = line.rpartition(" ")
        if number.strip().isdigit():
            id_map[symbol or " "] = [int(number)]  # the space token is written as " 3"
    try:
        rate, speakers = int(meta["sample_rate"]), int(meta.get("n_speakers", "1"))
    except ValueError as exc:
        raise ModelFormatError(f"{voice.model.name}: bad sherpa metadata: {exc}") from exc
    return {"audio": {"sample_rate": rate}, "espeak": {"voice": meta.get("voice", "en-us")},
            "num_symbols": max((i[0] for i in id_map.values()), default=-1) + 1, "num_speakers": speakers,
            "phoneme_type": "espeak", "phoneme_id_map": id_map}


def _check_config(data: dict[str, Any], name: str) -> None:
    """Refuse a config piper would misread or crash on, saying which field is wrong."""
    def fail(what: str) -> ModelFormatError:
        return ModelFormatError(f"voice config of {name}: {what}")

    audio = data.get("audio")
    rate = audio.get("sample_rate") if isinstance(audio, dict) else None
    if not isinstance(rate, int) or isinstance(rate, bool) or not _RATES[0] <= rate <= _RATES[1]:
        raise fail(f"audio.sample_rate must be a whole number of Hz in {_RATES[0]}..{_RATES[1]}, got {rate!r}")
    speakers = data.get("num_speakers", 1)
    if not isinstance(speakers, int) or isinstance(speakers, bool) or speakers < 1:
        raise fail(f"num_speakers must be a positive whole number, got {speakers!r}")
    data["num_speakers"] = speakers
    kind = data.setdefault("phoneme_type", "espeak")
    if kind not in _PHONEME_TYPES:
        raise fail(f"phoneme_type {kind!r} is not supported (only {', '.join(_PHONEME_TYPES)})")
    espeak = data.get("espeak")
    if kind == "espeak" and not (isinstance(espeak, dict) and isinstance(espeak.get("voice"), str)):
        raise fail("espeak.voice (the espeak-ng voice name) is missing")
    data.setdefault("espeak", {"voice": ""})
    id_map = data.get("phoneme_id_map")
    if not isinstance(id_map, dict) or not all(_is_id_list(ids) for ids in id_map.values()):
        raise fail("phoneme_id_map must map phonemes to lists of non-negative ids")
    if missing := [s for s in (_BOS, _EOS, _PAD) if s not in id_map]:
        raise fail(f"phoneme_id_map lacks the markers {missing}")
    top = max(max(ids) for ids in id_map.values())
    symbols = data.setdefault("num_symbols", top + 1)
    if not isinstance(symbols, int) or top >= symbols:
        raise fail(f"phoneme id {top} does not fit num_symbols={symbols!r}")
    inference = data.get("inference", {})
    if not isinstance(inference, dict) or not all(
            isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in inference.values()):
        raise fail("inference scales must be non-negative numbers")


def _is_id_list(ids: Any) -> bool:
    return isinstance(ids, list) and bool(ids) and all(isinstance(i, int) and i >= 0 for i in ids)


def _split_phonemes(phonemes: list[str]) -> Iterator[list[str]]:
    """Cut an over-long sentence at word gaps (or hard, for one endless word) into runs the model handles."""
    while len(phonemes) > MAX_PHONEMES:
        gap = max((i for i in range(MAX_PHONEMES // 2, MAX_PHONEMES) if phonemes[i] == " "), default=MAX_PHONEMES)
        yield phonemes[:gap]
        phonemes = phonemes[gap:]
    if phonemes:
        yield phonemes
