"""Model registry: name -> Linen module class. Adding a model = one module + one entry here.

Every model maps `[B, H, W, 3]` in [0, 1] to `[B, H*scale, W*scale, 3]` float32 (not clipped),
has fields `scale`, `dtype` (computation) and `param_dtype`, a class constant
`SUPPORTED_SCALES`, and is called as `model.apply(variables, x, train=False)`.
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxsr.models.bicubic import Bicubic
from jaxsr.models.edsr import EDSR
from jaxsr.models.layers import count_params
from jaxsr.models.rrdbnet import RRDBNet
from jaxsr.models.srresnet import MSRResNet

MODELS: dict[str, type[nn.Module]] = {
    "msrresnet": MSRResNet,
    "edsr": EDSR,
    "rrdbnet": RRDBNet,
    "bicubic": Bicubic,
}

# Dataclass fields that Linen adds to every module; not model options.
_LINEN_FIELDS = frozenset({"parent", "name"})


def _model_class(name: str) -> type[nn.Module]:
  try:
    return MODELS[name]
  except KeyError:
    raise ValueError(f"Unknown model {name!r}; available: {sorted(MODELS)}") from None


def supported_scales(name: str) -> tuple[int, ...]:
  """Upscale factors that model `name` can be built for."""
  return tuple(_model_class(name).SUPPORTED_SCALES)


def model_options(name: str) -> tuple[str, ...]:
  """Keyword options accepted by `create_model(name, ...)` besides scale and dtype."""
  fields = dataclasses.fields(_model_class(name))
  return tuple(f.name for f in fields
               if f.name not in _LINEN_FIELDS | {"scale", "dtype"})


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
  valid = model_options(name)
  unknown = sorted(set(kwargs) - set(valid))
  if unknown:
    raise ValueError(f"Unknown option(s) {unknown} for model {name!r}; valid options: "
                     f"{list(valid)}")
  return cls(scale=scale, dtype=dtype, **kwargs)


__all__ = ["MODELS", "create_model", "supported_scales", "model_options", "count_params",
           "Bicubic", "EDSR", "MSRResNet", "RRDBNet"]
