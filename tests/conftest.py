"""Every test starts from its own seed, derived from its name, so inputs are random but a failure
reproduces. LSTMKIT_TEST_SEED shifts all seeds, to draw a fresh set of inputs.

"auto" takes its static ranking in the tests (LSTMKIT_AUTOTUNE=0), so which engine runs never
depends on how busy the machine is; tests/engines/test_tuning.py drives the measured choice with
a fake timer. Nothing is cached outside a temporary folder."""

from __future__ import annotations

import os
import zlib

import pytest
import torch

os.environ.setdefault("LSTMKIT_AUTOTUNE", "0")


@pytest.fixture(scope="session", autouse=True)
def engine_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Engine choices go to pytest's temporary folder, never to the user's cache."""
    os.environ.setdefault("LSTMKIT_CACHE_DIR", str(tmp_path_factory.mktemp("engine-cache")))


@pytest.fixture(autouse=True)
def seed(request: pytest.FixtureRequest) -> int:
    seed = zlib.crc32(request.node.nodeid.encode()) + int(os.environ.get("LSTMKIT_TEST_SEED", "0"))
    torch.manual_seed(seed)
    return seed
