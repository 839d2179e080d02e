"""What this machine can run: CPU, SIMD, memory, disk, GPU, engines, audio, memory bandwidth.

:func:`detect_capabilities` gathers it all into one frozen :class:`Capabilities`
record; ``runanywhere doctor`` prints it. Engines are listed from package
metadata only (the table in :mod:`runanywhere.core.engines`): nothing here imports an engine.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

from .config import default_home
from .engines import engine_versions
from .validation import positive_int, positive_number

_SIMD_FLAGS: dict[str, str] = {
    # Linux /proc/cpuinfo flags (x86) and Features (arm64), lower-cased.
    "avx": "AVX",
    "avx2": "AVX2",
    "fma": "FMA",
    "f16c": "F16C",
    "avx512f": "AVX512F",
    "avx512bw": "AVX512BW",
    "avx512_vnni": "AVX512_VNNI",
    "avx512_bf16": "AVX512_BF16",
    "avx512vbmi": "AVX512_VBMI",
    "amx_tile": "AMX_TILE",
    "amx_int8": "AMX_INT8",
    "amx_bf16": "AMX_BF16",
    "asimd": "NEON",
    "sve": "SVE",
    # Intel macOS sysctl machdep.cpu.features / leaf7_features spellings.
    "avx1.0": "AVX",
    "avx512vnni": "AVX512_VNNI",
}
_ARM64 = frozenset({"arm64", "aarch64"})
_BUFFER_BYTES_PER_THREAD = 256 << 20
_MAX_PASSES = 10
_COMMAND_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Capabilities:
    """A snapshot of the machine, from :func:`detect_capabilities`.

    Sizes are bytes (None when the OS does not say); ``memory_bandwidth_gb_per_s``
    is the measured DRAM read bandwidth in GB/s (10**9 bytes/s), None when not measured.
    """

    os_name: str
    os_version: str
    python_version: str
    machine: str
    cpu_model: str
    physical_cores: int
    logical_cores: int
    simd: tuple[str, ...]
    ram_total_bytes: int | None
    ram_available_bytes: int | None
    store_path: Path
    disk_free_bytes: int
    gpus: tuple[str, ...]
    engines: Mapping[str, str | None]
    audio_devices: tuple[str, ...]
    memory_bandwidth_gb_per_s: float | None
    bandwidth_threads: int | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "engines", MappingProxyType(dict(self.engines)))

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    def decode_ceiling_tokens_per_second(self, model_bytes: int) -> float | None:
        """Upper bound on LLM decode speed: each token reads every weight once from memory."""
        positive_number("model_bytes", model_bytes)
        if self.memory_bandwidth_gb_per_s is None:
            return None
        return self.memory_bandwidth_gb_per_s * 1e9 / model_bytes

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values (paths as strings, mappings as dicts), plus ``has_gpu``."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(store_path=str(self.store_path), engines=dict(self.engines), has_gpu=self.has_gpu)
        return data


def detect_capabilities(*, measure_bandwidth: bool = True, store_path: Path | None = None) -> Capabilities:
    """Describe this machine; ``measure_bandwidth`` spends about a second reading memory.

    ``store_path`` (default: the model store, ``RUNANYWHERE_HOME``) is where free
    disk space is measured; it need not exist yet.
    """
    system, machine = platform.system(), platform.machine().lower()
    cpuinfo = _cpuinfo()
    cpu_model = _cpu_model(cpuinfo, system)
    physical = _physical_cores(cpuinfo, system)
    ram_total, ram_available = _memory()
    store = Path(store_path if store_path is not None else default_home()).expanduser().absolute()
    bandwidth = measure_memory_bandwidth(physical) if measure_bandwidth else None
    return Capabilities(
        os_name=system,
        os_version=platform.mac_ver()[0] or platform.release(),
        python_version=platform.python_version(),
        machine=machine,
        cpu_model=cpu_model,
        physical_cores=physical,
        logical_cores=os.cpu_count() or 1,
        simd=_simd(cpuinfo, system, machine),
        ram_total_bytes=ram_total,
        ram_available_bytes=ram_available,
        store_path=store,
        disk_free_bytes=shutil.disk_usage(next(p for p in (store, *store.parents) if os.path.exists(p))).free,
        gpus=_gpus(system, machine, cpu_model),
        engines=engine_versions(),
        audio_devices=_audio_devices(),
        memory_bandwidth_gb_per_s=bandwidth,
        bandwidth_threads=physical if measure_bandwidth else None,
    )


def measure_memory_bandwidth(threads: int | None = None, seconds: float = 1.0) -> float:
    """DRAM read bandwidth in GB/s (10**9 bytes/s) with numpy on ``threads`` (default: physical cores).

    Method: each worker thread fills its own 256 MiB array (far beyond any L3
    cache) with distinct uint64 values, so no two pages are alike and a
    hypervisor cannot merge them into one cached page. Workers then start
    together behind a barrier and each ``np.bitwise_or.reduce`` their array:
    numpy releases the GIL for it and does one cheap SIMD op per loaded word,
    so the pass is bound by memory, not arithmetic (a float ``sum`` is not: its
    pairwise summation tops out near DRAM speed on one core). A pass moves
    every byte once and lasts from the first worker's start to the last
    worker's end. Passes repeat, at least 3 and at most 10, while ``seconds``
    (counted from the first allocation) last; the best pass is the result,
    as STREAM reports. Buffers shrink to fit a quarter of available RAM.
    """
    import numpy as np  # deferred: `import runanywhere` stays light

    count = positive_int("threads", threads if threads is not None else _physical_cores(_cpuinfo(), platform.system()))
    positive_number("seconds", seconds)
    deadline = time.perf_counter() + seconds
    per_thread = _BUFFER_BYTES_PER_THREAD
    available = _memory()[1]
    if available is not None:
        per_thread = max(1 << 20, min(per_thread, available // 4 // count))
    words = per_thread // 8

    def fill(index: int) -> NDArray[np.uint64]:
        return np.arange(index * words, (index + 1) * words, dtype=np.uint64)

    def read(barrier: threading.Barrier, data: NDArray[np.uint64]) -> tuple[float, float]:
        barrier.wait()
        start = time.perf_counter()
        np.bitwise_or.reduce(data)
        return start, time.perf_counter()

    best = 0.0
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="runanywhere-bandwidth") as pool:
        buffers = list(pool.map(fill, range(count)))
        for done in range(_MAX_PASSES):
            if done >= 3 and time.perf_counter() > deadline:
                break
            # The barrier holds `count` tasks on the pool's `count` threads, so all read at once.
            barrier = threading.Barrier(count)
            spans = list(pool.map(read, [barrier] * count, buffers))
            elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
            best = max(best, count * words * 8 / elapsed / 1e9)
    return best


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _run(*args: str) -> str:
    """A command's stdout, or "" when it is missing, fails or takes over 3 s."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per block (one per logical CPU); empty off Linux."""
    blocks = []
    for chunk in _read_text("/proc/cpuinfo").split("\n\n"):
        pairs = (line.partition(":") for line in chunk.splitlines())
        block = {key.strip(): value.strip() for key, sep, value in pairs if sep}
        if block:
            blocks.append(block)
    return blocks


def _cpu_model(cpuinfo: list[dict[str, str]], system: str) -> str:
    for block in cpuinfo:
        for key in ("model name", "Model", "Hardware", "cpu model"):
            if block.get(key):
                return block[key]
    if system == "Darwin" and (brand := _run("sysctl", "-n", "machdep.cpu.brand_string")):
        return brand
    return platform.processor() or platform.machine() or "unknown"


def physical_cores() -> int:
    """Physical CPU cores of this machine (the useful thread count for inference)."""
    return _physical_cores(_cpuinfo(), platform.system())


def _physical_cores(cpuinfo: list[dict[str, str]], system: str) -> int:
    """Distinct (package, core) pairs from /proc/cpuinfo, else sysfs sibling sets, else logical CPUs."""
    cores = {(b["physical id"], b["core id"]) for b in cpuinfo if "physical id" in b and "core id" in b}
    if not cores:
        topology = Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology/thread_siblings_list")
        cores = {("", _read_text(path).strip()) for path in topology} - {("", "")}
    if cores:
        return len(cores)
    if system == "Darwin" and (count := _run("sysctl", "-n", "hw.physicalcpu")).isdigit():
        return int(count)
    return os.cpu_count() or 1


def _simd(cpuinfo: list[dict[str, str]], system: str, machine: str) -> tuple[str, ...]:
    first = cpuinfo[0] if cpuinfo else {}
    flags = set(f"{first.get('flags', '')} {first.get('Features', '')}".lower().split())
    if system == "Darwin":
        features = _run("sysctl", "-n", "machdep.cpu.features", "machdep.cpu.leaf7_features")
        flags.update(features.lower().split())
    found = {_SIMD_FLAGS[flag] for flag in flags if flag in _SIMD_FLAGS}
    if machine in _ARM64:
        found.add("NEON")
    return tuple(sorted(found))


def _memory() -> tuple[int | None, int | None]:
    """(total, available) RAM bytes: /proc/meminfo on Linux, else os.sysconf where it exists."""
    meminfo = {}
    for line in _read_text("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        value = rest.split()
        if value and value[0].isdigit():
            meminfo[key] = int(value[0]) * 1024
    if "MemTotal" in meminfo:
        return meminfo["MemTotal"], meminfo.get("MemAvailable")
    return _sysconf_bytes("SC_PHYS_PAGES"), _sysconf_bytes("SC_AVPHYS_PAGES")


def _sysconf_bytes(name: str) -> int | None:
    try:
        return os.sysconf(name) * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no os.sysconf on Windows; no such name on macOS
        return None


def _gpus(system: str, machine: str, cpu_model: str) -> tuple[str, ...]:
    if system == "Darwin" and machine in _ARM64:
        return (f"{cpu_model} GPU (Metal)",)
    if (smi := shutil.which("nvidia-smi")) and (
        rows := _run(smi, "--query-gpu=name,memory.total", "--format=csv,noheader")
    ):
        split = (row.rpartition(",") for row in rows.splitlines())
        return tuple(f"{name.strip()} ({memory.strip()})" for name, _, memory in split)
    models = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        for line in _read_text(info).splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model":
                models.append(value.strip())
    return tuple(models)


def _audio_devices() -> tuple[str, ...]:
    """Names of sound devices, via the optional ``sounddevice`` module; empty when it is unusable."""
    try:
        import sounddevice
    except (ImportError, OSError):  # module missing, or libportaudio2 missing
        return ()
    try:
        devices = sounddevice.query_devices()
    except sounddevice.PortAudioError:  # no audio subsystem (containers, CI)
        return ()
    return tuple(str(device["name"]) for device in devices)
