"""StableHLO export: a `jax.export` serialized program with symbolic batch / height / width.

The file is `jax.export.Exported.serialize()` of the float program (`[b, k*h, k*w, 3]` float32
in [0, 1] -> `[b, s*k*h, s*k*w, 3]` float32, not clipped), lowered for CPU, CUDA and TPU. Any
process with a compatible jax runs it, with no jaxsr and no model code:

  exported = jax.export.deserialize(open('model.stablehlo', 'rb').read())
  sr = exported.call(lr)  # lr: float32 [B, H, W, 3]
"""

import jax
from jax import export as jax_export

from jaxsr.export import program as program_lib
from jaxsr.ops import conv

PLATFORMS = ("cpu", "cuda", "tpu")


def serialize(program: program_lib.InferenceProgram, platforms=PLATFORMS) -> bytes:
  """The serialized `jax.export.Exported` of `program.float_fn()`."""
  with conv.portable():
    exported = jax_export.export(jax.jit(program.float_fn()), platforms=tuple(platforms))(
        program.input_spec())
  return bytes(exported.serialize())
