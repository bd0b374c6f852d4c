"""Sampling math: noise-level schedules, solvers, precision and tiled (blended) denoising, one job per module.

API (what stride-generate and stride-train call)::

    from stride_model.sampling import Tiling, sample_ensemble, sampler_kwargs

    members = sample_ensemble(                      # [B, M, C_out, H, W]
        model, cond, seeds, spec.out_channels,      # cond: full-domain Conditioning; seeds: B lists of M
        **sampler_kwargs(config.sampler),           # solver, schedule, precision, steps, sigmas, churn
        batch_size=config.batch_size,               # members per sampler call (speed/memory only)
        tiling=Tiling(tile=spec.hr_shape, overlap=16, factor=spec.factor, tile_batch=16),  # or None
    )
    # stride_model.members.physical_members(model, spec, cond, seeds, transforms, **same_kwargs) passes
    # every keyword above through to sample_ensemble.

Lower level: `get_solver(name)(denoiser, latents, sigmas, cond, *, generator, callback, churn)`,
`make_sigmas(name, n, sigma_min, sigma_max, rho)`, `autocast_denoiser(denoiser, precision)`,
`TileLayout.build(domain, tile, overlap, factor)` with `TiledDenoiser(denoiser, layout, tile_batch=...)`,
`nfe(solver, steps)` / `steps_for_nfe(solver, budget)`. `auto_tiling(domain, patch, factor)` gives the
Tiling of a domain larger than the training patch (None when it fits): stride-generate and the inline
evaluation of stride-train both sample through it, so a model is never run on a field larger than its patch. Unknown solver/schedule/precision names and bad
tilings (tile larger than the domain, overlap >= tile, sizes not multiples of the factor) raise ValueError
with a one-line message naming the field (`sampler.solver`, `tiling.overlap`, ...).
"""

from stride_model.sampling.ensemble import (
    Tiling,
    auto_tiling,
    default_overlap,
    predict,
    sample_ensemble,
    sampler_kwargs,
)
from stride_model.sampling.noise import NoiseSource, StackedRandomGenerator
from stride_model.sampling.precision import autocast_denoiser
from stride_model.sampling.schedules import SCHEDULES, karras_sigmas, loglinear_sigmas, make_sigmas, vp_sigmas
from stride_model.sampling.solvers import (
    NO_CHURN,
    SOLVERS,
    Churn,
    Denoiser,
    StepCallback,
    get_solver,
    nfe,
    steps_for_nfe,
)
from stride_model.sampling.tiling import (
    TiledDenoiser,
    TileLayout,
    crop_conditioning,
    predict_tiled,
    sample_stitched,
    tile_conditioning,
)

__all__ = [
    "NO_CHURN",
    "SCHEDULES",
    "SOLVERS",
    "Churn",
    "Denoiser",
    "NoiseSource",
    "StackedRandomGenerator",
    "StepCallback",
    "TileLayout",
    "TiledDenoiser",
    "Tiling",
    "auto_tiling",
    "autocast_denoiser",
    "crop_conditioning",
    "default_overlap",
    "get_solver",
    "karras_sigmas",
    "loglinear_sigmas",
    "make_sigmas",
    "nfe",
    "predict",
    "predict_tiled",
    "sample_ensemble",
    "sample_stitched",
    "sampler_kwargs",
    "steps_for_nfe",
    "tile_conditioning",
    "vp_sigmas",
]
