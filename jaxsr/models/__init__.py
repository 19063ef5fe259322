"""Model and discriminator registries: name -> Linen module class. Adding a model = one module
+ one entry here.

Every model maps `[B, H, W, 3]` in [0, 1] to `[B, H*scale, W*scale, 3]` float32 (not clipped),
has fields `scale`, `dtype` (computation) and `param_dtype`, a class constant
`SUPPORTED_SCALES`, and is called as `model.apply(variables, x, train=False)`. Models with
BatchNorm ('seed') keep running averages in 'batch_stats'; with `train=True` apply them with
`mutable=['batch_stats']`.

Every discriminator maps `[B, H, W, C]` in [0, 1] to float32 logits (`[B, 1]`, or `[B, H, W, 1]`
for 'unet_sn'), has fields `dtype` and `param_dtype`, and is called as
`disc.apply(variables, x, train=True, mutable=['batch_stats'])` in training and
`disc.apply(variables, x, train=False)` otherwise.
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxsr.models.bicubic import Bicubic
from jaxsr.models.dat import DAT
from jaxsr.models.discriminators import (SeedDiscriminator, UNetDiscriminatorSN,
                                         VGGStyleDiscriminator)
from jaxsr.models.edsr import EDSR
from jaxsr.models.layers import count_params
from jaxsr.models.hat import HAT
from jaxsr.models.omnisr import OmniSR
from jaxsr.models.plksr import PLKSR, RealPLKSR
from jaxsr.models.rcan import RCAN
from jaxsr.models.rrdbnet import RRDBNet
from jaxsr.models.seed import SeedGenerator
from jaxsr.models.span import SPAN
from jaxsr.models.srresnet import MSRResNet
from jaxsr.models.srvgg import SRVGGNetCompact
from jaxsr.models.swinir import SwinIR

MODELS: dict[str, type[nn.Module]] = {
    "msrresnet": MSRResNet,
    "edsr": EDSR,
    "rrdbnet": RRDBNet,
    "bicubic": Bicubic,
    "seed": SeedGenerator,
    "srvgg": SRVGGNetCompact,
    "swinir": SwinIR,
    "dat": DAT,
    "hat": HAT,
    "omnisr": OmniSR,
    "plksr": PLKSR,
    "realplksr": RealPLKSR,
    "rcan": RCAN,
    "span": SPAN,
}

DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "vgg_style": VGGStyleDiscriminator,
    "unet_sn": UNetDiscriminatorSN,
    "seed": SeedDiscriminator,
}

# Dataclass fields that Linen adds to every module; not model options.
_LINEN_FIELDS = frozenset({"parent", "name"})


def _lookup(registry: dict[str, type[nn.Module]], kind: str, name: str) -> type[nn.Module]:
  try:
    return registry[name]
  except KeyError:
    raise ValueError(f"Unknown {kind} {name!r}; available: {sorted(registry)}") from None


def _options(cls: type[nn.Module], reserved: frozenset[str]) -> tuple[str, ...]:
  """Dataclass fields of `cls` other than Linen's and `reserved` (set by the factory)."""
  return tuple(f.name for f in dataclasses.fields(cls)
               if f.name not in _LINEN_FIELDS | reserved)


def _check_options(kind: str, name: str, kwargs: dict[str, Any], valid: tuple[str, ...]):
  unknown = sorted(set(kwargs) - set(valid))
  if unknown:
    raise ValueError(f"Unknown option(s) {unknown} for {kind} {name!r}; valid options: "
                     f"{list(valid)}")


def _model_class(name: str) -> type[nn.Module]:
  return _lookup(MODELS, "model", name)


def supported_scales(name: str) -> tuple[int, ...]:
  """Upscale factors that model `name` can be built for."""
  return tuple(_model_class(name).SUPPORTED_SCALES)


def model_options(name: str) -> tuple[str, ...]:
  """Keyword options accepted by `create_model(name, ...)` besides scale and dtype."""
  return _options(_model_class(name), frozenset({"scale", "dtype"}))


def create_model(name: str, scale: int, dtype: Any = jnp.float32, **kwargs) -> nn.Module:
  """Builds model `name` for upscale factor `scale`.

  Args:
    name: a key of `MODELS`.
    scale: upscale factor; must be in `supported_scales(name)`.
    dtype: computation dtype (e.g. jnp.bfloat16); outputs are float32.
    **kwargs: model fields, e.g. num_feat=64, num_block=16.

  Returns:
    The unbound Linen module.

  Raises:
    ValueError: unknown model, unsupported scale or unknown option (before any tracing).
  """
  cls = _model_class(name)
  if scale not in cls.SUPPORTED_SCALES:
    raise ValueError(f"Model {name!r} does not support scale {scale}; supported scales: "
                     f"{supported_scales(name)}")
  _check_options("model", name, kwargs, model_options(name))
  return cls(scale=scale, dtype=dtype, **kwargs)


def discriminator_options(name: str) -> tuple[str, ...]:
  """Keyword options accepted by `create_discriminator(name, ...)` besides dtype."""
  return _options(_lookup(DISCRIMINATORS, "discriminator", name), frozenset({"dtype"}))


def create_discriminator(name: str, dtype: Any = jnp.float32, **kwargs) -> nn.Module:
  """Builds discriminator `name`; it maps `[B, H, W, C]` in [0, 1] to float32 logits.

  Args:
    name: a key of `DISCRIMINATORS`.
    dtype: computation dtype (e.g. jnp.bfloat16); logits are float32.
    **kwargs: discriminator fields, e.g. num_feat=64, input_size=128.

  Returns:
    The unbound Linen module.

  Raises:
    ValueError: unknown discriminator, unknown option or invalid option value (before any
      tracing).
  """
  cls = _lookup(DISCRIMINATORS, "discriminator", name)
  _check_options("discriminator", name, kwargs, discriminator_options(name))
  return cls(dtype=dtype, **kwargs)


__all__ = ["MODELS", "DISCRIMINATORS", "create_model", "create_discriminator",
           "supported_scales", "model_options", "discriminator_options", "count_params",
           "Bicubic", "DAT", "EDSR", "HAT", "MSRResNet", "OmniSR", "PLKSR", "RCAN", "RealPLKSR",
           "RRDBNet", "SeedGenerator", "SPAN", "SRVGGNetCompact", "SwinIR",
           "VGGStyleDiscriminator", "UNetDiscriminatorSN", "SeedDiscriminator"]
