"""STRIDE model library (torch): EDM-preconditioned UNet with FiLM conditioning and RainGate, EDM loss,
Heun sampler, EMA."""

from stride_model.conditioning import Conditioning, assemble_conditioning
from stride_model.context import ContextEncoder
from stride_model.ema import EMA, ema_beta
from stride_model.film import FiLMEmbedding
from stride_model.loss import EDMLoss, LossOutput, masked_mean, regression_loss, regression_output
from stride_model.precond import ConditionedModel, EDMPrecond, RegressionModel, build_model
from stride_model.rain_gate import RainGate, apply_rain_gate, rain_gate_bce
from stride_model.sampler import StackedRandomGenerator, edm_heun_sampler, sample_ensemble
from stride_model.schedule import karras_sigmas
from stride_model.unet import UNet
from stride_model.weights import load_into, load_weights, save_weights

__all__ = [
    "EMA",
    "ConditionedModel",
    "Conditioning",
    "ContextEncoder",
    "EDMLoss",
    "EDMPrecond",
    "FiLMEmbedding",
    "LossOutput",
    "RainGate",
    "RegressionModel",
    "StackedRandomGenerator",
    "UNet",
    "apply_rain_gate",
    "assemble_conditioning",
    "build_model",
    "edm_heun_sampler",
    "ema_beta",
    "karras_sigmas",
    "load_into",
    "load_weights",
    "masked_mean",
    "rain_gate_bce",
    "regression_loss",
    "regression_output",
    "sample_ensemble",
    "save_weights",
]
