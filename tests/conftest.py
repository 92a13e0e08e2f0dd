"""Every test starts from its own seed, derived from its name, so inputs are random but a failure
reproduces. LSTMKIT_TEST_SEED shifts all seeds, to draw a fresh set of inputs.

Property-based tests (Hypothesis) run a fixed, derandomised set of examples; see the profiles
below.

"auto" takes its static ranking in the tests (LSTMKIT_AUTOTUNE=0), so which engine runs never
depends on how busy the machine is; tests/engines/test_tuning.py drives the measured choice with
a fake timer. Nothing is cached outside a temporary folder."""

from __future__ import annotations

import os
import zlib

import pytest
import torch
from hypothesis import HealthCheck, settings

os.environ.setdefault("LSTMKIT_AUTOTUNE", "0")

# Hypothesis: a fixed number of examples, derandomised (the same draws on every run, so CI is
# reproducible and within its minutes), and nothing written to a .hypothesis folder. "release"
# draws many more; "explore" draws fresh ones each run. LSTMKIT_HYPOTHESIS picks one.
_QUIET = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("default", max_examples=20, derandomize=True, **_QUIET)
settings.register_profile("release", max_examples=400, derandomize=True, **_QUIET)
settings.register_profile("explore", max_examples=100, **_QUIET)
settings.load_profile(os.environ.get("LSTMKIT_HYPOTHESIS", "default"))


@pytest.fixture(scope="session", autouse=True)
def engine_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Engine choices go to pytest's temporary folder, never to the user's cache."""
    os.environ.setdefault("LSTMKIT_CACHE_DIR", str(tmp_path_factory.mktemp("engine-cache")))


@pytest.fixture(autouse=True)
def seed(request: pytest.FixtureRequest) -> int:
    seed = zlib.crc32(request.node.nodeid.encode()) + int(os.environ.get("LSTMKIT_TEST_SEED", "0"))
    torch.manual_seed(seed)
    return seed
