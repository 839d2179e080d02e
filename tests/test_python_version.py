"""The Python version is stated in four places; they must agree (pyproject, ruff, mypy, the install script)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_ruff_mypy_and_install_script_name_the_same_python():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    required = re.fullmatch(r">=(\d+)\.(\d+)", config["project"]["requires-python"])
    assert required, config["project"]["requires-python"]
    major, minor = required.groups()
    assert config["tool"]["ruff"]["target-version"] == f"py{major}{minor}"
    assert config["tool"]["mypy"]["python_version"] == f"{major}.{minor}"
    install = (ROOT / "scripts" / "install.sh").read_text()
    demanded = re.findall(r"sys\.version_info >= \((\d+), (\d+)\)", install)
    assert demanded == [(major, minor)], demanded
    assert f"Python {major}.{minor} or newer" in install
