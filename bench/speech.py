"""All speech benchmarks in one run: STT (SDK vs raw faster-whisper), TTS (SDK vs raw piper, streaming vs
batch time to first audio) and VAD (cost per 32 ms chunk, SDK vs raw sherpa-onnx).

Runs ``bench/speech_stt.py``, ``speech_tts.py`` and ``speech_vad.py`` one after the other in this process
and gathers their results (``bench/results/stt.json``, ``tts.json``, ``vad.json``) into
``bench/results/speech.json``. Run: ``.venv/bin/python bench/speech.py`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def run(name: str) -> dict:
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print(f"== {name}", flush=True)
    module.main()
    return json.loads((RESULTS / f"{name.removeprefix('speech_')}.json").read_text())


def main() -> None:
    sys.argv = sys.argv[:1]
    report = {"bench": "speech", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              **{part: run(f"speech_{part}") for part in ("stt", "tts", "vad")}}
    (RESULTS / "speech.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {RESULTS / 'speech.json'}")


if __name__ == "__main__":
    main()
