"""The program every export format is made from: a generator's inference function with
symbolic batch and image sizes.

`InferenceProgram` closes over a model and its variables (parameters become constants of the
exported program) and traces `model.apply` inside `ops.conv.portable()`, so the program holds
plain XLA convolutions and no platform-specific branches. Sizes: batch `b`, height `k*h`, width
`k*w` with `k = multiple` (`inference.input_multiple`: 1 for most models; RRDBNet x2 / x1, the
seed generator and SwinIR need multiples, and `jaxsr.upscale` pads images to them).
"""

import dataclasses
from typing import Any, Callable, Dict, Iterator, Tuple

import jax
from jax import export as jax_export
import jax.numpy as jnp

from jaxsr.ops import conv

# Dimension variables of the input `[b, k*h, k*w, 3]`: name -> axis.
DIM_AXES = {"b": 0, "h": 1, "w": 2}
INPUT_DIM_NAMES = ("batch", "height", "width")
OUTPUT_DIM_NAMES = ("batch", "out_height", "out_width")


@dataclasses.dataclass(frozen=True)
class InferenceProgram:
  """`model.apply(variables, x)` for export.

  Attributes:
    model: a generator (`jaxsr.models`), its `dtype` the computation dtype.
    variables: its variables ({'params': ...} and, for BatchNorm, 'batch_stats').
    multiple: input height and width must be multiples of this.
  """
  model: Any
  variables: Dict[str, Any]
  multiple: int = 1

  @property
  def scale(self) -> int:
    return int(self.model.scale)

  @property
  def dtype(self) -> str:
    """The computation dtype's name ('float32', 'bfloat16', 'float16')."""
    return jnp.dtype(self.model.dtype).name

  def float_fn(self) -> Callable[[jax.Array], jax.Array]:
    """`[B, H, W, 3]` float32 in [0, 1] -> `[B, H*s, W*s, 3]` float32, not clipped."""
    return lambda x: self.model.apply(self.variables, x).astype(jnp.float32)

  def uint8_fn(self) -> Callable[[jax.Array], jax.Array]:
    """`[B, H, W, 3]` uint8 -> `[B, H*s, W*s, 3]` uint8 (clipped to [0, 1], x255, rounded)."""
    apply = self.float_fn()

    def fn(x):
      y = apply(x.astype(jnp.float32) / 255.0)
      return jnp.round(jnp.clip(y, 0.0, 1.0) * 255.0).astype(jnp.uint8)
    return fn

  def symbolic_dims(self) -> Tuple[Any, ...]:
    """(b, k*h, k*w) as JAX symbolic dimensions (h, w >= 1)."""
    b, h, w = jax_export.symbolic_shape(", ".join(DIM_AXES))
    return (b, self.multiple * h, self.multiple * w)

  def polymorphic_shape(self) -> str:
    """The input shape in `jax2tf` / `jax.export` string form, e.g. '(b, 4*h, 4*w, 3)'."""
    k = "" if self.multiple == 1 else f"{self.multiple}*"
    return f"(b, {k}h, {k}w, 3)"

  def input_spec(self, dtype: Any = jnp.float32) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct((*self.symbolic_dims(), 3), dtype)

  def trace(self, fn: Callable, dtype: Any = jnp.float32):
    """`jax.make_jaxpr(fn)` on the symbolic input, with portable convolutions."""
    with conv.portable():
      return jax.make_jaxpr(fn)(self.input_spec(dtype))


def equations(jaxpr) -> Iterator[Any]:
  """Every equation of a (closed) jaxpr, those of its sub-jaxprs included."""
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  for eqn in jaxpr.eqns:
    yield eqn
    for param in eqn.params.values():
      for sub in (param if isinstance(param, (tuple, list)) else (param,)):
        if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
          yield from equations(sub)
