"""Context encoder: a small CNN over the LR context region around a sample, pooled to one vector."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from stride_model.unet import _conv, _init, num_groups


class ContextEncoder(nn.Module):
    """[B, C, hc, wc] -> [B, out_channels]: a 3x3 conv, `stages` stride-2 3x3 convs, global average pooling.

    Pooling makes the vector independent of the region's size, so the encoder reads a patch's context in
    training and the (larger) full-domain context in generation. The output projection starts at zero, so a
    model with the encoder starts as the same model without it.
    """

    def __init__(self, in_channels: int, width: int, out_channels: int, stages: int = 3) -> None:
        super().__init__()
        self.conv_in = _conv(in_channels, width, 3)
        self.down = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(stages):
            conv = nn.Conv2d(width, width, 3, stride=2, padding=1)
            _init(conv)
            self.down.append(conv)
            self.norms.append(nn.GroupNorm(num_groups(width), width))
        self.proj = nn.Linear(width, out_channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, context: Tensor) -> Tensor:
        x = F.silu(self.conv_in(context))
        for conv, norm in zip(self.down, self.norms, strict=True):
            x = F.silu(norm(conv(x)))
        out: Tensor = self.proj(x.mean(dim=(2, 3)))
        return out
