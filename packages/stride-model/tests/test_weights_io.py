"""weights: save/load round trip with weights_only=True and clear errors naming the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from stride_contracts.checkpoint import ModelSpec
from stride_model.precond import EDMPrecond, build_model
from stride_model.unet import UNet
from stride_model.weights import load_into, load_weights, save_weights


class Custom:
    """An arbitrary class: weights_only=True must refuse to unpickle it."""


def test_round_trip(tmp_path: Path, tiny_spec: Callable[..., ModelSpec]) -> None:
    spec = tiny_spec(attn_resolutions=(1,))
    unet = UNet(spec)
    torch.nn.init.normal_(unet.conv_out.weight)
    model = EDMPrecond(spec, unet)
    path = save_weights(model, tmp_path / "ckpt" / "weights.pt")
    assert path.exists() and not (tmp_path / "ckpt" / "weights.pt.tmp").exists()

    state = load_weights(path)
    assert state.keys() == model.state_dict().keys()
    clone = load_into(build_model(spec), path)
    for key, value in model.state_dict().items():
        assert torch.equal(clone.state_dict()[key], value), key


def test_mismatched_architecture_names_file_and_keys(
    tmp_path: Path, tiny_spec: Callable[..., ModelSpec]
) -> None:
    path = save_weights(build_model(tiny_spec()), tmp_path / "weights.pt")
    with pytest.raises(ValueError, match=r"weights\.pt: weights do not match.*unexpected keys \[\]"):
        load_into(build_model(tiny_spec(attn_resolutions=(1,))), path)
    with pytest.raises(
        ValueError, match=r"shape mismatches \[.*file \[8, 4, 3, 3\] vs model \[16, 4, 3, 3\]"
    ):
        load_into(build_model(tiny_spec(model_channels=16)), path)


def test_unreadable_or_unsafe_files_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"garbage\.pt: cannot load weights .*damaged") as info:
        load_weights(garbage)
    assert "\n" not in str(info.value) and "weights_only" not in str(info.value)
    with pytest.raises(ValueError, match=r"missing\.pt: cannot load weights"):
        load_weights(tmp_path / "missing.pt")

    unsafe = tmp_path / "unsafe.pt"
    torch.save({"obj": Custom()}, unsafe)
    with pytest.raises(
        ValueError, match=r"unsafe\.pt: not a STRIDE weights file, or it has been tampered"
    ) as info:
        load_weights(unsafe)
    # One line, and never torch's advice to switch the protection off.
    assert "\n" not in str(info.value) and "weights_only" not in str(info.value)

    not_state = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], not_state)
    with pytest.raises(ValueError, match=r"list\.pt: expected a state dict"):
        load_weights(not_state)
