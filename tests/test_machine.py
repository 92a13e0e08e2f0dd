"""The machine a timing is printed beside: the CPU's vendor, model and instruction-set flags,
read from /proc/cpuinfo, and what is said where there is none."""

from __future__ import annotations

import pytest
import torch

from lstmkit import _machine
from lstmkit._machine import CPUInfo, cpu_info, parse_cpuinfo

INTEL = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile avx512vl

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: another CPU
flags\t\t: fpu sse4_2 avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile avx512vl avx512_fp16
"""

GRAVITON = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes crc32 asimdhp sve i8mm bf16 sve2
CPU implementer\t: 0x41
CPU part\t: 0xd4f
"""


def test_cpuinfo_gives_the_first_cpu_and_its_flags_in_a_fixed_order() -> None:
    intel = parse_cpuinfo(INTEL, capability="AVX512")
    assert intel == CPUInfo(
        vendor="GenuineIntel",
        model="Intel(R) Xeon(R) Platinum 8480+",
        flags=(
            "sse4_2",
            "avx2",
            "fma",
            "avx512f",
            "avx512vl",
            "avx512_bf16",
            "amx_tile",
            "amx_bf16",
        ),
        capability="AVX512",
    )
    assert intel.describe() == (
        "Intel(R) Xeon(R) Platinum 8480+ (GenuineIntel; "
        "sse4_2 avx2 fma avx512f avx512vl avx512_bf16 amx_tile amx_bf16; ATen AVX512)"
    )
    arm = parse_cpuinfo(GRAVITON)
    assert arm == CPUInfo(
        "CPU implementer 0x41", "", ("asimd", "asimdhp", "sve", "sve2", "bf16", "i8mm"), ""
    )
    assert parse_cpuinfo("") == CPUInfo("", "", (), "")


def test_without_cpuinfo_the_platform_names_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_machine, "_read_cpuinfo", lambda: "")
    monkeypatch.setattr(_machine.platform, "processor", lambda: "arm")
    cpu = cpu_info()
    assert (cpu.model, cpu.flags) == ("arm", ())
    assert cpu.describe() == f"arm (flags unknown; ATen {torch.backends.cpu.get_cpu_capability()})"
    assert _machine.cpu_name() == "arm"
