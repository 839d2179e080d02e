"""The package's layers: imports only point down, and no modules import each other in a circle.

core <- models / backends / media <- runtime <- features <- server / jobs <- cli. Features use each
other only through the orchestrators (voice, tools, structured output, vlm: text generation that also reads
images), which compose lower features.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "runanywhere"
LAYERS = {"_version": 0, "core": 0, "models": 1, "backends": 1, "media": 1, "runtime": 2, "features": 3,
          "server": 4, "jobs": 4, "cli": 5}
PUBLIC = 3.5
ORCHESTRATORS = {"voice", "tools", "structured_output", "vlm"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, module_level_only: bool) -> set[str]:
    """The runanywhere modules a file imports (relative imports resolved), optionally only those run at import."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("runanywhere"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("runanywhere"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names
                             if _module_path(f"{target}.{alias.name}") is not None)
    return found


def _module_path(module: str) -> Path | None:
    base = SRC.parent.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _layer(module: str) -> tuple[str, float]:
    parts = module.split(".")
    if len(parts) < 2:
        return "the public API", PUBLIC  # runanywhere/__init__.py: for server, jobs and cli only
    return parts[1], LAYERS[parts[1]]


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_point_down(path: Path) -> None:
    own = _layer(_module_name(path))
    for target in _imports(path, module_level_only=False):
        theirs = _layer(target)
        assert theirs[1] <= own[1], f"{_module_name(path)} ({own[0]}) imports {target} ({theirs[0]}): an arrow up"


def test_features_use_each_other_only_through_the_orchestrators() -> None:
    for path in sorted((SRC / "features").rglob("*.py")):
        if path.name == "__init__.py" and path.parent.name == "features":
            continue
        feature = _module_name(path).split(".")[2]
        for target in _imports(path, module_level_only=False):
            parts = target.split(".")
            if parts[1] == "features" and len(parts) > 2 and parts[2] != feature:
                assert feature in ORCHESTRATORS, f"{_module_name(path)} uses the feature {target}"


def test_no_import_circles() -> None:
    graph = {_module_name(p): {t for t in _imports(p, module_level_only=True) if _module_path(t)} for p in MODULES}
    # A package's __init__ re-exporting its own modules is not a circle with them.
    for module, targets in graph.items():
        targets.discard(module)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target.startswith(module + "."):
                continue  # a package importing its own submodules
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target):], target]
                if not all(m == target or target.startswith(m + ".") or m.startswith(target + ".")
                           for m in cycle):
                    pytest.fail("import circle: " + " -> ".join(cycle))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
