"""DDPM++-style UNet (a simplified EDM SongUNet) whose channel layout comes only from a ModelSpec."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stride_contracts.checkpoint import ModelSpec

Resample = Literal["none", "down", "up"]

# Residual branches are summed with their skip and rescaled so activations keep unit variance (DDPM++).
_SKIP_SCALE = math.sqrt(0.5)


def num_groups(channels: int, max_groups: int = 32, min_channels_per_group: int = 4) -> int:
    """Largest GroupNorm group count <= max_groups that divides channels with >= 4 channels per group."""
    groups = max(1, min(max_groups, channels // min_channels_per_group))
    while channels % groups:
        groups -= 1
    return groups


def _init(module: nn.Conv2d | nn.Linear, scale: float = 1.0) -> None:
    # EDM initialises every layer with xavier_uniform and zero bias; `scale` shrinks the last layer of a
    # residual branch so each block starts close to the identity.
    nn.init.xavier_uniform_(module.weight, gain=1.0)
    with torch.no_grad():
        module.weight.mul_(scale)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def embedding_width(spec: ModelSpec) -> int:
    """Width of the noise embedding, to which the per-sample FiLM embedding is added."""
    # The sinusoidal embedding pairs cos/sin, so it needs an even width even when model_channels is odd.
    return spec.model_channels + spec.model_channels % 2


def _conv(in_channels: int, out_channels: int, kernel: int, scale: float = 1.0) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)
    _init(conv, scale)
    return conv


class PositionalEmbedding(nn.Module):
    """Sinusoidal embedding of the scalar noise label (as in EDM's PositionalEmbedding)."""

    def __init__(self, num_channels: int, max_positions: int = 10_000) -> None:
        super().__init__()
        if num_channels % 2:
            raise ValueError(f"PositionalEmbedding needs an even num_channels, got {num_channels}")
        self.num_channels = num_channels
        self.max_positions = max_positions

    def forward(self, x: Tensor) -> Tensor:
        freqs = torch.arange(self.num_channels // 2, dtype=torch.float32, device=x.device)
        freqs = (1 / self.max_positions) ** (freqs / (self.num_channels // 2))
        x = x.to(torch.float32).outer(freqs)
        return torch.cat([x.cos(), x.sin()], dim=1)


class SelfAttention(nn.Module):
    """Multi-head self-attention over all pixels, with a pre-norm and a residual connection."""

    def __init__(self, channels: int, channels_per_head: int = 64) -> None:
        super().__init__()
        heads = max(1, channels // channels_per_head)
        while channels % heads:
            heads -= 1
        self.num_heads = heads
        self.norm = nn.GroupNorm(num_groups(channels), channels)
        self.qkv = _conv(channels, channels * 3, 1, scale=math.sqrt(0.2))
        self.proj = _conv(channels, channels, 1, scale=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        qkv = self.qkv(self.norm(x)).reshape(batch, 3, self.num_heads, channels // self.num_heads, -1)
        # [B, heads, pixels, head_dim] is the layout scaled_dot_product_attention expects.
        q, k, v = (t.transpose(-1, -2) for t in qkv.unbind(1))
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(-1, -2).reshape(batch, channels, height, width)
        result: Tensor = (x + self.proj(out)) * _SKIP_SCALE
        return result


class ResBlock(nn.Module):
    """Residual block: norm-SiLU-conv, noise scale/shift, norm-SiLU-dropout-conv, optional resampling."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        emb_channels: int,
        *,
        dropout: float = 0.0,
        resample: Resample = "none",
        attention: bool = False,
    ) -> None:
        super().__init__()
        if resample not in ("none", "down", "up"):
            raise ValueError(f"resample must be 'none', 'down' or 'up', got {resample!r}")
        self.resample = resample
        self.norm0 = nn.GroupNorm(num_groups(in_channels), in_channels)
        self.conv0 = _conv(in_channels, out_channels, 3)
        self.affine = nn.Linear(emb_channels, out_channels * 2)
        _init(self.affine)
        self.norm1 = nn.GroupNorm(num_groups(out_channels), out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = _conv(out_channels, out_channels, 3, scale=1e-5)
        self.skip: nn.Module = (
            _conv(in_channels, out_channels, 1)
            if in_channels != out_channels or resample != "none"
            else nn.Identity()
        )
        self.attn: nn.Module = SelfAttention(out_channels) if attention else nn.Identity()

    def _resample(self, x: Tensor) -> Tensor:
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        orig = x
        x = self._resample(F.silu(self.norm0(x)))
        x = self.conv0(x)
        scale, shift = self.affine(emb)[:, :, None, None].chunk(2, dim=1)
        x = F.silu(torch.addcmul(shift, self.norm1(x), scale + 1))
        x = self.conv1(self.dropout(x))
        x = (x + self.skip(self._resample(orig))) * _SKIP_SCALE
        result: Tensor = self.attn(x)
        return result


class UNet(nn.Module):
    """DDPM++ UNet: F([noisy target, condition image], noise_label, film) -> [B, out_channels, H, W].

    `film` (optional, [B, embedding_width(spec)]) is added to the noise embedding, so it modulates every
    residual block through the block's scale and shift; the context, variable-label and time embeddings
    (stride_model.film) reach the network this way.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.out_channels = spec.out_channels
        self.input_channels = spec.out_channels + spec.in_channels
        self.num_levels = len(spec.channel_mult)
        base = spec.model_channels
        emb_channels = base * 4
        attn_levels = set(spec.attn_resolutions)

        noise_channels = self.embedding_width = embedding_width(spec)
        self.noise_embed = PositionalEmbedding(noise_channels)
        self.map0 = nn.Linear(noise_channels, emb_channels)
        self.map1 = nn.Linear(emb_channels, emb_channels)
        _init(self.map0)
        _init(self.map1)

        def block(cin: int, cout: int, resample: Resample = "none", attention: bool = False) -> ResBlock:
            return ResBlock(
                cin, cout, emb_channels, dropout=spec.dropout, resample=resample, attention=attention
            )

        self.conv_in = _conv(self.input_channels, base * spec.channel_mult[0], 3)
        self.encoder = nn.ModuleList()
        skip_channels = [base * spec.channel_mult[0]]
        cout = skip_channels[0]
        for level, mult in enumerate(spec.channel_mult):
            if level > 0:
                self.encoder.append(block(cout, cout, resample="down"))
                skip_channels.append(cout)
            for _ in range(spec.num_blocks):
                cin, cout = cout, base * mult
                self.encoder.append(block(cin, cout, attention=level in attn_levels))
                skip_channels.append(cout)

        self.middle = nn.ModuleList([block(cout, cout, attention=bool(attn_levels)), block(cout, cout)])

        self.decoder = nn.ModuleList()
        for level, mult in reversed(list(enumerate(spec.channel_mult))):
            if level < self.num_levels - 1:
                self.decoder.append(block(cout, cout, resample="up"))
            for _ in range(spec.num_blocks + 1):
                cin, cout = cout + skip_channels.pop(), base * mult
                self.decoder.append(block(cin, cout, attention=level in attn_levels))

        self.norm_out = nn.GroupNorm(num_groups(cout), cout)
        # Zero so the untrained network outputs exactly 0 and D(x; sigma) starts as c_skip * x.
        self.conv_out = _conv(cout, spec.out_channels, 3)
        nn.init.zeros_(self.conv_out.weight)

    def forward(self, x: Tensor, noise_labels: Tensor, film: Tensor | None = None) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.input_channels:
            raise ValueError(
                f"UNet input: expected [B, {self.input_channels}, H, W] "
                f"(out_channels {self.out_channels} + in_channels {self.spec.in_channels}), "
                f"got {list(x.shape)}"
            )
        down = 2 ** (self.num_levels - 1)
        if x.shape[2] % down or x.shape[3] % down:
            raise ValueError(
                f"UNet input: H and W must be divisible by {down} for {self.num_levels} levels, "
                f"got {list(x.shape[2:])}"
            )
        if noise_labels.shape != (x.shape[0],):
            raise ValueError(
                f"UNet noise_labels: expected shape [{x.shape[0]}], got {list(noise_labels.shape)}"
            )

        emb = self.noise_embed(noise_labels)
        if film is not None:
            if film.shape != emb.shape:
                raise ValueError(
                    f"UNet film embedding: expected shape {list(emb.shape)}, got {list(film.shape)}"
                )
            # Added before the embedding MLP (as EDM adds class labels), so it can interact with the noise level.
            emb = emb + film
        emb = F.silu(self.map0(emb))
        emb = F.silu(self.map1(emb))

        x = self.conv_in(x)
        skips = [x]
        for block in self.encoder:
            x = block(x, emb)
            skips.append(x)
        for block in self.middle:
            x = block(x, emb)
        for block in self.decoder:
            if block.resample == "none":
                x = torch.cat([x, skips.pop()], dim=1)
            x = block(x, emb)
        out: Tensor = self.conv_out(F.silu(self.norm_out(x)))
        return out
