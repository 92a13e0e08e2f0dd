"""The package's shape, read from its source with ``ast`` (nothing is imported): dependencies
point down, nothing imports in a circle, and no function or module outgrows a reader."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lstmkit"

LEVELS = {
    "lstmkit._checks": 0,
    "lstmkit._errors": 0,
    "lstmkit._io": 0,
    "lstmkit._likelihoods": 0,
    "lstmkit._machine": 0,
    "lstmkit._moved": 0,
    "lstmkit._recording": 0,
    "lstmkit._spec": 0,
    "lstmkit._state": 0,
    "lstmkit._version": 0,
    "lstmkit._warnings": 0,
    "lstmkit.cells": 1,
    "lstmkit.engines": 2,
    "lstmkit.layers": 3,
    "lstmkit.modules": 4,
    "lstmkit.interop": 4,
    "lstmkit.tasks": 4,
    "lstmkit.train": 5,
    "lstmkit.analysis": 6,
    "lstmkit.experiments": 6,
    "lstmkit.cli": 7,
    "lstmkit.__main__": 8,
    "lstmkit": 8,  # the public API: __init__ re-exports, nothing inside imports it
}
"""Each part of lstmkit and its level: a module may import its own level and those below."""

MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every lstmkit module ``path`` imports, wherever the import stands (inside functions and
    ``if TYPE_CHECKING:`` blocks too): a type-only import is a dependency as well."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("lstmkit"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if not base.startswith("lstmkit"):
                continue
            for alias in node.names:  # `from lstmkit import _recording` names a module
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return found


def level(name: str) -> int:
    while name not in LEVELS:
        name = name.rpartition(".")[0]
    return LEVELS[name]


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(path, name, known) - {name} for name, path in found.items()}


def test_every_module_has_a_level() -> None:
    for name in modules():
        assert level(name) >= 0  # raises KeyError for a part LEVELS does not know


def test_dependencies_point_down() -> None:
    upward = [
        f"{name} (level {level(name)}) imports {target} (level {level(target)})"
        for name, targets in graph().items()
        for target in sorted(targets)
        if level(target) > level(name)
    ]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize(
    ("lower", "forbidden"),
    [
        ("lstmkit.cells", ("layers", "engines", "analysis", "train", "cli")),
        ("lstmkit.engines", ("layers", "analysis", "train", "cli")),
    ],
)
def test_the_lowest_parts_import_nothing_above_them(lower: str, forbidden: tuple[str, ...]) -> None:
    bad = [
        f"{name} imports {target}"
        for name, targets in graph().items()
        if name.startswith(lower)
        for target in targets
        if any(target.startswith(f"lstmkit.{part}") for part in forbidden)
    ]
    assert not bad, "\n".join(bad)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``edges``, each as a path that returns to its start."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    found = cycles(graph())
    assert not found, "\n".join(" -> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_sees_local_and_type_only_imports(tmp_path: Path) -> None:
    source = tmp_path / "lstmkit" / "cells" / "x.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from lstmkit import _recording\n"
        "if TYPE_CHECKING:\n"
        "    from lstmkit.layers import Recurrent\n"
        "def f():\n"
        "    import lstmkit.train.trainer\n"
        "    from . import base\n",
        encoding="utf-8",
    )
    known = {"lstmkit._recording", "lstmkit.cells.base"}
    assert imports(source, "lstmkit.cells.x", known) == {
        "lstmkit._recording",
        "lstmkit.layers",
        "lstmkit.train.trainer",
        "lstmkit.cells.base",
    }


def test_functions_and_modules_fit_on_a_screen_or_two() -> None:
    long = []
    for name, path in modules().items():
        source = path.read_text(encoding="utf-8")
        if source.count("\n") > MAX_MODULE_LINES:
            long.append(f"module {name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name} (line {node.lineno}): {lines} lines")
    assert not long, "\n".join(long)


# the built-in classes an error lstmkit raises on purpose must not be raised as they are: each has
# an lstmkit subclass (lstmkit._errors) that a caller can catch as lstmkit.LstmkitError
_BUILTIN_ERRORS = {
    "ValueError", "TypeError", "KeyError", "IndexError", "RuntimeError", "OSError",
    "FileNotFoundError", "FileExistsError", "PermissionError", "IsADirectoryError",
}  # fmt: skip


def _builtin_raises(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            if isinstance(func, ast.Name) and func.id in _BUILTIN_ERRORS:
                lines.append(node.lineno)
    return lines


def test_every_error_raised_on_purpose_is_an_lstmkit_error() -> None:
    found = {
        str(path.relative_to(PACKAGE)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := _builtin_raises(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert found == {}, f"raise lstmkit's subclasses (lstmkit._errors) instead: {found}"


def test_the_raise_reader_sees_a_builtin_raise() -> None:
    tree = ast.parse("def f():\n    raise ValueError('x')\n\ndef g():\n    raise KeyError\n")
    assert _builtin_raises(tree) == [2]
