"""STRIDE model library (torch): EDM-preconditioned UNet, EDM loss, Heun sampler, EMA."""

from stride_model.conditioning import assemble_condition
from stride_model.ema import EMA, ema_beta
from stride_model.loss import EDMLoss, LossOutput, regression_loss
from stride_model.precond import EDMPrecond, RegressionModel, build_model
from stride_model.sampler import StackedRandomGenerator, edm_heun_sampler, sample_ensemble
from stride_model.schedule import karras_sigmas
from stride_model.unet import UNet
from stride_model.weights import load_into, load_weights, save_weights

__all__ = [
    "EMA",
    "EDMLoss",
    "EDMPrecond",
    "LossOutput",
    "RegressionModel",
    "StackedRandomGenerator",
    "UNet",
    "assemble_condition",
    "build_model",
    "edm_heun_sampler",
    "ema_beta",
    "karras_sigmas",
    "load_into",
    "load_weights",
    "regression_loss",
    "sample_ensemble",
    "save_weights",
]
