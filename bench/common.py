"""What every benchmark shares: this checkout on the path, the command line, a scratch store and the JSON report.

Import it before ``runanywhere``: it puts this checkout's ``src`` (and the repo
root, for ``tests.*`` helpers) first on ``sys.path``, so a benchmark measures
the code next to it, not whichever clone the venv's editable install names.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from runanywhere import EventBus, SDKConfig  # noqa: E402
from runanywhere.models.manager import ModelLibrary  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def parse_args(description: str, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """``--smoke`` (tiny inputs, seconds: proves the bench runs) and ``--results DIR`` (default bench/results)."""
    parser = parser or argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="tiny inputs and one repeat: checks that it runs")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON report goes")
    return parser.parse_args()


def scratch_library() -> ModelLibrary:
    """An offline model library in a fresh temporary store (packaged models resolve without a download)."""
    home = Path(tempfile.mkdtemp(prefix="bench-store-"))
    return ModelLibrary(SDKConfig(home=home, offline=True), events=EventBus())


def moonshine_asset(name: str) -> Path:
    """A recording bundled with moonshine-voice (located, not imported: the package needs more to import)."""
    spec = importlib.util.find_spec("moonshine_voice")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("moonshine-voice is not installed (see MODELS.md)")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / name


def header(name: str, smoke: bool) -> dict[str, Any]:
    """The fields every report starts with: what ran, when, where, and how busy the machine was."""
    return {"bench": name, "smoke": smoke, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": platform.platform(), "load_average_before": os.getloadavg()[0]}


def write_report(results: Path, name: str, report: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` (the machine's load afterwards added: other work skews absolute numbers)."""
    report = {**report, "load_average_after": os.getloadavg()[0]}
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}", flush=True)
    return path


def run_raw(script: str, job: dict[str, Any]) -> dict[str, Any]:
    """Run a raw-engine baseline (``bench/<script>``) in a fresh process: ``job`` as JSON on its stdin,
    its last stdout line as the JSON result."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script)], input=json.dumps(job), capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the raw baseline failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result
