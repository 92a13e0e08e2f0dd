"""Every test starts from its own seed, derived from its name, so inputs are random but a failure
reproduces. LSTMKIT_TEST_SEED shifts all seeds, to draw a fresh set of inputs."""

from __future__ import annotations

import os
import zlib

import pytest
import torch


@pytest.fixture(autouse=True)
def seed(request: pytest.FixtureRequest) -> int:
    seed = zlib.crc32(request.node.nodeid.encode()) + int(os.environ.get("LSTMKIT_TEST_SEED", "0"))
    torch.manual_seed(seed)
    return seed
