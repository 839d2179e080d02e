"""Inputs for the batch-job tests: 20 sentences spoken by the Piper voice into WAVs, plus one corrupt file,
a JSONL of texts (one of them empty) and a JSONL of prompts."""

from __future__ import annotations

import json
from pathlib import Path

from runanywhere import ModelLibrary, TextToSpeech, save_wav

SENTENCES = [
    "The cat sat on the mat.", "It is raining in Paris today.", "Please close the kitchen window.",
    "My brother plays the piano.", "The train leaves at nine.", "We planted tomatoes in the garden.",
    "Turn left at the next corner.", "The coffee is too hot to drink.", "She reads a book every week.",
    "The children are playing outside.", "I lost my keys this morning.", "The river flows to the sea.",
    "Dinner is ready on the table.", "The museum opens at ten.", "He painted the fence blue.",
    "The birds sing every morning.", "The store sells fresh bread.", "Our meeting starts after lunch.",
    "The moon is bright tonight.", "Water boils in the old kettle.",
]
TEXTS = ["cat", "kitten", "the stock market fell today", "", "A sunny day at the beach."]
PROMPTS = ["What is the capital of France?", "Name a color of the sky.", "Say hello."]


def write_inputs(folder: Path, library: ModelLibrary) -> Path:
    """Write the WAVs (``folder/wavs``), ``texts.jsonl`` and ``prompts.jsonl``; returns ``folder``."""
    wavs = folder / "wavs"
    wavs.mkdir(parents=True)
    tts = TextToSpeech(library)
    tts.load_voice("piper-en_US-joe-medium", variation=0)
    try:
        for i, sentence in enumerate(SENTENCES):
            save_wav(wavs / f"{i:02d}.wav", tts.synthesize(sentence))
    finally:
        tts.unload()
    (wavs / "zz-corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really audio")
    (folder / "texts.jsonl").write_text("".join(json.dumps({"id": f"t{i}", "text": t}) + "\n"
                                                for i, t in enumerate(TEXTS)))
    (folder / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    return folder


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
