"""All speech benchmarks in one run: STT (SDK vs raw faster-whisper), Moonshine (SDK vs raw sherpa-onnx),
whisper.cpp (SDK vs raw pywhispercpp, next to faster-whisper on the same recordings), TTS (SDK vs raw piper,
streaming vs batch time to first audio), Kokoro next to it (SDK vs raw kokoro-onnx) and VAD (cost per 32 ms
chunk, SDK vs raw sherpa-onnx).

Runs ``bench/speech_stt.py``, ``speech_moonshine.py``, ``speech_whispercpp.py``, ``speech_tts.py``,
``speech_kokoro.py`` and ``speech_vad.py`` one after the other, each in a process of its own (one engine's
threads never slow another's figures), and gathers their results (``stt.json``, ``moonshine.json``,
``whispercpp.json``, ``tts.json``, ``kokoro.json``, ``vad.json``) into ``speech.json`` in the results directory.
Run: ``.venv/bin/python bench/speech.py`` (a few minutes on 2 cores; ``--smoke``: seconds).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from common import header, parse_args, write_report

HERE = Path(__file__).resolve().parent
PARTS = ("stt", "moonshine", "whispercpp", "tts", "kokoro", "vad")


def run(part: str, smoke: bool, results: Path) -> dict[str, object]:
    """Run ``speech_<part>.py`` in a child process; its report, or SystemExit when it failed."""
    print(f"== speech_{part}", flush=True)
    command = [sys.executable, str(HERE / f"speech_{part}.py"), "--results", str(results)]
    done = subprocess.run(command + (["--smoke"] if smoke else []), check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench/speech_{part}.py failed with exit code {done.returncode}")
    report: dict[str, object] = json.loads((results / f"{part}.json").read_text())
    return report


def main() -> None:
    args = parse_args("every speech benchmark (STT, TTS, VAD), each in its own process")
    report = {**header("speech", args.smoke), **{part: run(part, args.smoke, args.results) for part in PARTS}}
    write_report(args.results, "speech", report)


if __name__ == "__main__":
    main()
