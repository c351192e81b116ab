import os
from pathlib import Path

import numpy as np
import pytest

# Quiet TensorFlow's C++ logging and keep its thread pools small on 2-core CI machines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def global_random_seed():
    """The seed every randomised test uses; override with SKSTELLAR_TESTS_SEED."""
    return int(os.environ.get("SKSTELLAR_TESTS_SEED", "42"))


@pytest.fixture
def rng(global_random_seed):
    return np.random.default_rng(global_random_seed)


@pytest.fixture(scope="session")
def shared_data():
    """Path to the project's real data (../shared/data); tests that need it skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it lives beside the repository)")
    return SHARED_DATA
