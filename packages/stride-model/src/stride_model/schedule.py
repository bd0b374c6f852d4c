"""Compatibility: the noise-level schedules live in stride_model.sampling.schedules."""

from stride_model.sampling.schedules import karras_sigmas, loglinear_sigmas, make_sigmas, vp_sigmas

__all__ = ["karras_sigmas", "loglinear_sigmas", "make_sigmas", "vp_sigmas"]
