"""Tiny ModelSpecs shared by the stride_model tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from stride_contracts.checkpoint import ModelSpec


def _tiny_spec(**overrides: Any) -> ModelSpec:
    """A spec small enough for CPU tests: 2 levels of 8/16 channels on a 16x24 HR grid."""
    fields: dict[str, Any] = {
        "in_dynamic_channels": 2,
        "in_static_channels": 1,
        "out_channels": 1,
        "lr_shape": (4, 6),
        "hr_shape": (16, 24),
        "model_channels": 8,
        "channel_mult": (1, 2),
    }
    fields.update(overrides)
    return ModelSpec(**fields)


@pytest.fixture
def tiny_spec() -> Callable[..., ModelSpec]:
    return _tiny_spec


@pytest.fixture(autouse=True)
def _deterministic_single_thread() -> Iterator[None]:
    # These tensors are tiny; on a shared, loaded CPU an intra-op thread pool makes every op wait for a
    # descheduled worker (100x slowdowns seen), so the tests run single-threaded and restore the setting.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
