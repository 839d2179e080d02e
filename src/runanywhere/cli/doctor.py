"""``runanywhere doctor``: what this machine can run, as a table or as JSON."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..core.capabilities import Capabilities, detect_capabilities
from ..core.engines import ENGINES

_CEILING_MODEL_SIZES = (("100 MB", 100 * 10**6), ("500 MB", 500 * 10**6), ("1 GB", 10**9))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="show CPU, memory, GPU, engines and audio devices of this machine",
        description="Show what this machine can run, and the fastest an LLM of a given size can decode.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--no-bandwidth", action="store_true", help="skip the memory bandwidth measurement (about 1 s)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    capabilities = detect_capabilities(measure_bandwidth=not args.no_bandwidth)
    if args.json:
        print(json.dumps(capabilities.to_dict(), indent=2))
    else:
        Console().print(_table(capabilities))
    return 0


def _table(caps: Capabilities) -> Table:
    table = Table(title="runanywhere doctor", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for title, rows in _sections(caps):
        table.add_row(Text(title, style="bold cyan"), "")
        for label, value in rows:
            table.add_row(Text(label), Text(value))
        table.add_section()
    return table


def _sections(caps: Capabilities) -> list[tuple[str, list[tuple[str, str]]]]:
    ram = f"{_gib(caps.ram_total_bytes)} total, {_gib(caps.ram_available_bytes)} available"
    bandwidth = [("read bandwidth", "not measured (--no-bandwidth)")]
    if caps.memory_bandwidth_gb_per_s is not None:
        measured = f"{caps.memory_bandwidth_gb_per_s:.1f} GB/s ({caps.bandwidth_threads} threads)"
        bandwidth = [("read bandwidth", measured)]
        for label, size in _CEILING_MODEL_SIZES:
            ceiling = caps.decode_ceiling_tokens_per_second(size)
            bandwidth.append((f"decode ceiling, {label} model", f"{ceiling:.0f} tokens/s"))
    return [
        (
            "System",
            [
                ("OS", f"{caps.os_name} {caps.os_version}"),
                ("Python", caps.python_version),
                ("machine", caps.machine),
            ],
        ),
        (
            "CPU",
            [
                ("model", caps.cpu_model),
                ("cores", f"{caps.physical_cores} physical, {caps.logical_cores} logical"),
                ("SIMD", " ".join(caps.simd) or "none detected"),
            ],
        ),
        (
            "Memory & disk",
            [("RAM", ram), ("disk free", f"{_gib(caps.disk_free_bytes)} at {caps.store_path}")],
        ),
        ("GPU", [("GPU", gpu) for gpu in caps.gpus] or [("GPU", "none (CPU only)")]),
        ("Engines", _engines(caps)),
        (
            "Audio",
            [("device", name) for name in caps.audio_devices]
            or [("devices", "none (needs the sounddevice package and libportaudio2)")],
        ),
        ("Memory bandwidth", bandwidth),
    ]


def _engines(caps: Capabilities) -> list[tuple[str, str]]:
    """One row per engine of the table: its packages' versions and what this SDK runs on it."""
    rows = []
    for engine in ENGINES:
        versions = ", ".join(f"{p.distribution} {caps.engines.get(p.distribution) or 'not installed'}"
                             for p in engine.packages)
        runs = ", ".join(sorted(c.value for c in engine.capabilities)) or "no adapter yet"
        hint = f"; pip install 'runanywhere[{engine.extra}]'" if engine.extra else ""
        installed = all(caps.engines.get(p.distribution) for p in engine.packages)
        rows.append((engine.name, f"{versions} ({runs}){'' if installed else hint}"))
    return rows


def _gib(size: int | None) -> str:
    return "unknown" if size is None else f"{size / 2**30:.1f} GiB"
