"""What a batch job is: its kind, model, feature options and store, as plain picklable data for every worker."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import GenerationOptions, InvalidInputError, SDKConfig, SynthesisOptions, TranscribeOptions
from ..core.validation import integer


class JobKind(str, enum.Enum):
    """The feature a job runs on each input."""

    TRANSCRIBE = "transcribe"
    EMBED = "embed"
    GENERATE = "generate"
    SPEAK = "speak"

    @property
    def reads_audio(self) -> bool:
        return self is JobKind.TRANSCRIBE

    @property
    def default_column(self) -> str:
        """The column of a text table read when none is named."""
        return "prompt" if self is JobKind.GENERATE else "text"


_OPTIONS: dict[JobKind, type | None] = {JobKind.TRANSCRIBE: TranscribeOptions, JobKind.EMBED: None,
                                        JobKind.GENERATE: GenerationOptions, JobKind.SPEAK: SynthesisOptions}


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to build its feature: the job's kind, ``model`` (None: the catalog default),
    the feature's ``options``, the SDK ``config`` (where the store is), ``audio_dir`` (speak: where WAVs go) and
    ``batch_size`` (inputs handed to a worker at once)."""

    kind: JobKind
    model: str | None = None
    options: Any = None
    config: SDKConfig | None = None
    audio_dir: Path | None = None
    batch_size: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", JobKind(self.kind))
        wanted = _OPTIONS[self.kind]
        if self.options is not None and (wanted is None or not isinstance(self.options, wanted)):
            name = wanted.__name__ if wanted else "no options"
            raise InvalidInputError(f"a {self.kind.value} job takes {name}, got {type(self.options).__name__}")
        if self.model is not None and (not isinstance(self.model, str) or not self.model.strip()):
            raise InvalidInputError(f"model must be a catalog id or a path, got {self.model!r}")
        integer("batch_size", self.batch_size, low=1, high=4096)
        if self.kind is JobKind.SPEAK and self.audio_dir is None:
            raise InvalidInputError("a speak job needs audio_dir: where to write each input's WAV")
