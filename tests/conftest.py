"""Suite-wide settings: tiny models run fastest (and steadiest on a shared 2-core machine) on
one torch thread; more threads only make the small per-step operations wait on each other."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    torch.set_num_threads(1)
    yield
