"""A one-line description of the machine, printed beside every timing."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, replace

import torch

CPU_FLAGS = (
    # x86: the vector units and matrix tiles the kernels of oneDNN, MKL and ATen dispatch on
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    # Arm (the "Features" line)
    "asimd",
    "asimdhp",
    "sve",
    "sve2",
    "bf16",
    "i8mm",
)
"""The instruction-set flags worth printing beside a timing, in the order they are printed."""


@dataclass(frozen=True)
class CPUInfo:
    vendor: str  # vendor_id (GenuineIntel, AuthenticAMD) or the Arm implementer code; "" unknown
    model: str  # "model name", else platform.processor() or platform.machine()
    flags: tuple[str, ...]  # those of CPU_FLAGS the CPU has, in that order; () when unknown
    capability: str  # torch.backends.cpu.get_cpu_capability(): the kernels ATen runs here

    def describe(self) -> str:
        """``"AMD EPYC 9654 (AuthenticAMD; avx2 fma avx512f avx512_bf16; ATen AVX512)"``."""
        flags = " ".join(self.flags) if self.flags else "flags unknown"
        details = [self.vendor, flags, f"ATen {self.capability}" if self.capability else ""]
        return f"{self.model} ({'; '.join(d for d in details if d)})"


def parse_cpuinfo(text: str, *, capability: str = "") -> CPUInfo:
    """The vendor, model and flags of the first processor in a Linux ``/proc/cpuinfo`` text
    (x86's ``vendor_id``, ``model name`` and ``flags``; Arm's ``CPU implementer`` and
    ``Features``); fields the text lacks are empty."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if not colon:
            if fields:
                break  # a blank line ends the first processor's block
            continue
        fields.setdefault(key.strip(), value.strip())
    implementer = fields.get("CPU implementer")
    vendor = fields.get("vendor_id") or (f"CPU implementer {implementer}" if implementer else "")
    present = set((fields.get("flags") or fields.get("Features") or "").split())
    return CPUInfo(
        vendor=vendor,
        model=fields.get("model name", ""),
        flags=tuple(flag for flag in CPU_FLAGS if flag in present),
        capability=capability,
    )


def _read_cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return f.read()
    except OSError:  # not Linux
        return ""


def cpu_info() -> CPUInfo:
    """This machine's CPU: from /proc/cpuinfo on Linux, elsewhere only its model as the
    platform module names it; with the kernels torch dispatches to on it."""
    parsed = parse_cpuinfo(_read_cpuinfo(), capability=torch.backends.cpu.get_cpu_capability())
    if parsed.model:
        return parsed
    fallback = platform.processor() or platform.machine() or "unknown CPU"
    return replace(parsed, model=fallback)


def cpu_name() -> str:
    return cpu_info().model


def describe_machine() -> str:
    return (
        f"{cpu_info().describe()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}"
    )
