"""detect_capabilities, engine lookup and ``runanywhere doctor`` on this very machine."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from runanywhere.backends import require_engine
from runanywhere.cli import doctor
from runanywhere.core.capabilities import Capabilities, detect_capabilities, measure_memory_bandwidth
from runanywhere.core.engines import ENGINES, engine_versions
from runanywhere.core.errors import BackendNotAvailableError, InvalidInputError, SDKErrorCode

DISTRIBUTIONS = {p.distribution: p.module for e in ENGINES for p in e.packages}


@pytest.fixture(scope="module")
def measured() -> Capabilities:
    """One full detection, bandwidth included, shared by the tests that need it (about a second)."""
    return detect_capabilities()


def _cpuinfo_flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    line = next((row for row in text.splitlines() if row.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def test_detects_sane_values_without_measuring(tmp_path: Path) -> None:
    store = tmp_path / "not" / "yet" / "created"
    caps = detect_capabilities(measure_bandwidth=False, store_path=store)
    assert caps.os_name == platform.system()
    assert caps.python_version == platform.python_version()
    assert caps.cpu_model
    assert 1 <= caps.physical_cores <= caps.logical_cores
    assert caps.ram_total_bytes is not None and caps.ram_total_bytes > 0
    assert caps.ram_available_bytes is None or 0 < caps.ram_available_bytes <= caps.ram_total_bytes
    assert caps.store_path == store and not store.exists()
    assert caps.disk_free_bytes > 0
    assert list(caps.simd) == sorted(caps.simd)
    assert caps.has_gpu == bool(caps.gpus)
    assert caps.memory_bandwidth_gb_per_s is None and caps.bandwidth_threads is None
    assert caps.decode_ceiling_tokens_per_second(98_000_000) is None


def test_default_store_path_is_runanywhere_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNANYWHERE_HOME", str(tmp_path / "home"))
    assert detect_capabilities(measure_bandwidth=False).store_path == tmp_path / "home"


@pytest.mark.skipif(not _cpuinfo_flags(), reason="needs x86 /proc/cpuinfo flags")
def test_simd_matches_cpuinfo_flags() -> None:
    flags = _cpuinfo_flags()
    simd = detect_capabilities(measure_bandwidth=False).simd
    assert ("AVX2" in simd) == ("avx2" in flags)
    assert ("AVX512F" in simd) == ("avx512f" in flags)
    assert ("AVX512_VNNI" in simd) == ("avx512_vnni" in flags)
    assert "NEON" not in simd


def test_bandwidth_and_decode_ceiling(measured: Capabilities) -> None:
    bandwidth = measured.memory_bandwidth_gb_per_s
    assert bandwidth is not None and bandwidth > 1.0
    assert measured.bandwidth_threads == measured.physical_cores
    size = 98 * 10**6
    assert measured.decode_ceiling_tokens_per_second(size) == pytest.approx(bandwidth * 1e9 / size)
    with pytest.raises(InvalidInputError):
        measured.decode_ceiling_tokens_per_second(0)


def test_measure_memory_bandwidth_single_thread_and_bad_arguments() -> None:
    assert measure_memory_bandwidth(threads=1, seconds=0.2) > 1.0
    with pytest.raises(InvalidInputError):
        measure_memory_bandwidth(threads=0)
    with pytest.raises(InvalidInputError):
        measure_memory_bandwidth(seconds=0)


def test_to_dict_is_json_serialisable(measured: Capabilities) -> None:
    data = json.loads(json.dumps(measured.to_dict()))
    assert data["store_path"] == str(measured.store_path)
    assert data["engines"] == dict(measured.engines)
    assert data["simd"] == list(measured.simd)
    assert data["memory_bandwidth_gb_per_s"] == measured.memory_bandwidth_gb_per_s
    assert data["has_gpu"] is measured.has_gpu


def test_engines_are_frozen_and_come_from_backends(measured: Capabilities) -> None:
    assert dict(measured.engines) == engine_versions()
    with pytest.raises(TypeError):
        measured.engines["llama-cpp-python"] = "0"  # type: ignore[index]


def test_engine_versions_match_installed_distributions() -> None:
    versions = engine_versions()
    assert set(versions) == set(DISTRIBUTIONS)
    for name, module in DISTRIBUTIONS.items():
        if importlib.util.find_spec(module) is None:
            assert versions[name] is None, name
        else:
            assert versions[name] == importlib.metadata.version(name), name


def test_engine_versions_reports_llama_cpp_python() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    assert engine_versions()["llama-cpp-python"] == importlib.metadata.version("llama-cpp-python")


def test_engine_versions_imports_no_engine(subprocess_env: dict[str, str]) -> None:
    code = (
        "import sys; from runanywhere.core.engines import ENGINES, engine_versions; engine_versions(); "
        "print(sorted({p.module for e in ENGINES for p in e.packages} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=subprocess_env)
    assert done.stdout.strip() == "[]"


def test_require_engine_missing_names_the_extra() -> None:
    with pytest.raises(BackendNotAvailableError) as caught:
        require_engine("runanywhere_no_such_engine", "llm")
    assert caught.value.code == SDKErrorCode.BACKEND_NOT_AVAILABLE
    assert isinstance(caught.value, ImportError)
    assert "runanywhere_no_such_engine is not installed: pip install 'runanywhere[llm]'" in str(caught.value)


def test_require_engine_broken_install_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_engine_pkg.py").write_text("raise OSError('libbroken: cannot open shared object')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BackendNotAvailableError, match=r"installed but failed to load \(libbroken: "):
        require_engine("broken_engine_pkg", "llm")


def test_require_engine_hint_comes_from_the_engine_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A module the table lists gets its distribution and extra from the table, with no extra passed.
    (tmp_path / "pywhispercpp.py").write_text("raise ImportError('no native library')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "pywhispercpp", raising=False)
    with pytest.raises(BackendNotAvailableError, match=r"] pywhispercpp is installed but failed to load .*pip install "
                                                       r"pywhispercpp$"):
        require_engine("pywhispercpp")
    piper = next(e for e in ENGINES if e.name == "piper")
    (tmp_path / "piper.py").write_text("raise OSError('libespeak-ng.so.1: cannot open shared object')\n")
    for name in [m for m in sys.modules if m == "piper" or m.startswith("piper.")]:
        monkeypatch.delitem(sys.modules, name)  # a TTS test may have imported the real one already
    with pytest.raises(BackendNotAvailableError, match=rf"] piper-tts is installed .*runanywhere\[{piper.extra}\]'$"):
        require_engine("piper.voice")


def test_the_installer_smoke_test_imports_the_table() -> None:
    script = (Path(__file__).parents[1] / "scripts" / "install.sh").read_text()
    assert "installable_modules()" in script
    from runanywhere.core.engines import installable_modules

    modules = installable_modules()
    assert {"llama_cpp", "faster_whisper", "sherpa_onnx", "piper", "onnxruntime"} <= set(modules)
    assert "pywhispercpp" not in modules  # no extra installs it
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module


def test_require_engine_returns_installed_module() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    assert require_engine("llama_cpp", "llm").__name__ == "llama_cpp"


def _doctor(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="runanywhere")
    doctor.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["doctor", *argv])
    return int(args.func(args))


def test_doctor_json_without_bandwidth(capsys: pytest.CaptureFixture[str]) -> None:
    assert _doctor(["--json", "--no-bandwidth"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["memory_bandwidth_gb_per_s"] is None
    assert set(data["engines"]) == set(DISTRIBUTIONS)
    assert data["physical_cores"] >= 1


def test_doctor_table_with_bandwidth(capsys: pytest.CaptureFixture[str]) -> None:
    assert _doctor([]) == 0
    out = capsys.readouterr().out
    for text in ("System", "SIMD", "Memory & disk", "GPU", "Engines", "llama-cpp-python", "Audio", "GB/s",
                 *(engine.name for engine in ENGINES)):
        assert text in out
    assert out.count("tokens/s") == 3


def test_doctor_table_without_bandwidth(capsys: pytest.CaptureFixture[str]) -> None:
    assert _doctor(["--no-bandwidth"]) == 0
    out = capsys.readouterr().out
    assert "not measured" in out and "tokens/s" not in out
