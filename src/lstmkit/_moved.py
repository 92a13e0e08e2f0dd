"""The module paths of lstmkit 0.1's first layout, kept working for a while.

``import lstmkit.grid`` (and the other paths in :data:`MOVED`) still gives a module with every
name it had, taken from where the name lives now, and warns once with a
:class:`DeprecationWarning` that names the new place. New code imports from the new places (or
from ``lstmkit`` itself, which re-exports the public API).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

MOVED: dict[str, tuple[str, ...]] = {
    "lstmkit.tracing": ("lstmkit.analysis.trace", "lstmkit._recording"),
    "lstmkit.gradient_flow": ("lstmkit.analysis.gradient_flow",),
    "lstmkit.plots": ("lstmkit.analysis.plots",),
    "lstmkit.explain": (
        "lstmkit.analysis.explain",
        "lstmkit.analysis.explain.page",
        "lstmkit.analysis.explain.colours",
    ),
    "lstmkit.bench": ("lstmkit.experiments.bench",),
    "lstmkit.cell_table": ("lstmkit.experiments.cell_table",),
    "lstmkit.sample": ("lstmkit.train.sample",),
    "lstmkit.attention": ("lstmkit.modules.attention",),
    "lstmkit.models": ("lstmkit.layers.registry", "lstmkit.modules.sequence"),
    "lstmkit.grid": ("lstmkit.cells.grid", "lstmkit.layers.variants", "lstmkit.modules.grid2d"),
    "lstmkit.depth_gated": ("lstmkit.cells.depth_gated", "lstmkit.layers.variants"),
}
"""Old module path -> the modules its names live in now, searched in this order."""


class _Moved(ModuleType):
    """A stand-in for a moved module: every attribute comes from the module that has it now.

    Importing ``lstmkit.gradient_flow`` makes it an attribute of ``lstmkit``, where the
    function of the same name lives; so a stand-in can be called, and calls the function its
    name ends with (``lstmkit.gradient_flow(model, task)`` keeps working)."""

    __targets__: tuple[str, ...]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.__all__))

    def __getattr__(self, name: str) -> Any:
        for target in self.__targets__:
            module = importlib.import_module(target)
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(
            f"module {self.__name__!r} (now {', '.join(self.__targets__)}) has no attribute "
            f"{name!r}"
        )


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = _Moved(spec.name)
        module.__targets__ = MOVED[spec.name]
        return module

    def exec_module(self, module: ModuleType) -> None:
        names: set[str] = set()
        for target in MOVED[module.__name__]:
            found = importlib.import_module(target)
            public = [n for n in vars(found) if not n.startswith("_")]
            names.update(getattr(found, "__all__", public))
        module.__all__ = sorted(names)  # type: ignore[attr-defined]  # what `import *` gives
        # stacklevel 2 skips the import machinery's frames and points at the user's import
        places = [t for t in MOVED[module.__name__] if not t.startswith("lstmkit._")]
        warnings.warn(
            f"{module.__name__} has moved to {' and '.join(places)}; import from there (or "
            "from lstmkit); the old path will be removed in a later release",
            DeprecationWarning,
            stacklevel=2,
        )


def install() -> None:
    """Lets the old paths import (once per process)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
