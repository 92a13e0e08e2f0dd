"""Builds the fused engine's C++ kernels on first use and caches them.

Importing lstmkit never needs a compiler: the kernels are compiled the first time a fused layer
runs (with torch.utils.cpp_extension, g++ and ninja; about half a minute), cached in torch's
extension folder (``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``) under a
name that changes with the source, the torch version and the CPU's vector instructions, and
loaded from there by every later process. If the build fails, the reason is kept and the fused
engine reports itself unavailable. The build says what it does on the ``lstmkit`` logger (the
command line shows it; a program sees it with ``logging.basicConfig(level=logging.INFO)``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path
from types import ModuleType

import torch

from lstmkit._errors import LstmkitRuntimeError

SOURCE = Path(__file__).with_name("fused.cpp")

# Vector instruction flags for the CPU capability torch itself detected at run time.
_CAPABILITY_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"],
    "AVX2": ["-mavx2", "-mfma", "-mf16c"],
}


log = logging.getLogger(__name__)


class KernelBuildError(LstmkitRuntimeError):
    """The fused engine's kernels could not be built or loaded here."""


_lock = threading.Lock()
_module: ModuleType | None = None
_failure: str | None = None


def capability() -> str:
    """The vector instructions the kernels are built for: AVX512, AVX2 or DEFAULT."""
    detected = torch.backends.cpu.get_cpu_capability()
    return detected if detected in _CAPABILITY_FLAGS else "DEFAULT"


def build_name() -> str:
    digest = hashlib.sha256()
    digest.update(SOURCE.read_bytes())
    digest.update(torch.__version__.encode())
    digest.update(capability().encode())
    return f"lstmkit_fused_{digest.hexdigest()[:12]}"


STALE_LOCK_SECONDS = 600
"""A build lock this old belongs to a build that was killed (a build takes under a minute)."""


def clear_stale_lock(folder: Path) -> bool:
    """Removes the lock a killed build left in ``folder``; torch's loader would otherwise wait
    for it forever, and every later run would hang. Returns whether there was one."""
    lock = folder / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return False
    if age < STALE_LOCK_SECONDS:
        return False  # another process may be building right now
    log.warning("removing %s, left %.0f minutes ago by a build that did not finish", lock, age / 60)
    lock.unlink(missing_ok=True)
    return True


def failure() -> str | None:
    """Why the kernels are unavailable, if a build was tried and failed."""
    return _failure


def load() -> ModuleType:
    """The compiled kernels, building them the first time on this machine."""
    global _module, _failure
    if _module is not None:
        return _module
    with _lock:
        if _module is not None:
            return _module
        if _failure is not None:
            raise KernelBuildError(_failure)
        from torch.utils import cpp_extension

        cap = capability()
        flags = ["-O3", "-fopenmp", "-std=c++17", *_CAPABILITY_FLAGS.get(cap, [])]
        if cap != "DEFAULT":
            flags += [f"-DCPU_CAPABILITY={cap}", f"-DCPU_CAPABILITY_{cap}"]
        name = build_name()
        started = time.perf_counter()
        try:  # to say whether this is the first build; a private helper of torch's
            folder = Path(cpp_extension._get_build_directory(name, verbose=False))
            fresh = not any(folder.glob("*.so"))
            clear_stale_lock(folder)
        except Exception:
            folder, fresh = Path("torch's extension folder"), True
        if fresh:
            log.info(
                "building the fused CPU engine for %s (once per machine, under a minute)...", cap
            )
        try:
            _module = cpp_extension.load(
                name=name,
                sources=[str(SOURCE)],
                extra_cflags=flags,
                extra_ldflags=["-fopenmp"],
                verbose=False,
            )
        except Exception as error:  # a compiler, ninja or the headers are missing
            _failure = f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:300]}"
            raise KernelBuildError(_failure) from error
        if fresh:
            log.info(
                "fused engine built in %.0f s and cached in %s",
                time.perf_counter() - started,
                folder,
            )
        return _module
