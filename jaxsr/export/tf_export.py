"""TF SavedModel (by `jax2tf`) and TFLite (from that SavedModel) exports.

The SavedModel has two signatures over dynamic `[batch, height, width, 3]` NHWC RGB images
(height and width multiples of the program's `multiple`):
  serving_default  input float32 in [0, 1] -> output float32 `[b, H*s, W*s, 3]`, not clipped;
  serving_uint8    input uint8 -> output uint8 (clipped, rounded).
Both call the model's StableHLO (an `XlaCallModule` op, lowered for CPU and CUDA), so TF Serving
runs it on either. The TFLite file is converted from the SavedModel's signatures; the
converter turns the StableHLO into TFLite builtin ops, and the interpreter takes any input size
(`resize_tensor_input`).
"""

import os
import tempfile
from typing import Sequence

from jaxsr.export import program as program_lib
from jaxsr.ops import conv

SIGNATURES = {"serving_default": "float32", "serving_uint8": "uint8"}
SAVEDMODEL_PLATFORMS = ("cpu", "cuda")


def _named_output(fn):
  return lambda x: {"output": fn(x)}


def save_savedmodel(program: program_lib.InferenceProgram, path: str,
                    platforms: Sequence[str] = SAVEDMODEL_PLATFORMS) -> None:
  """Writes the SavedModel directory `path` (see the module docstring)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top

  module = tf.Module()
  signatures = {}
  for key, dtype in SIGNATURES.items():
    fn = program.float_fn() if dtype == "float32" else program.uint8_fn()
    converted = jax2tf.convert(fn, polymorphic_shapes=[program.polymorphic_shape()],
                               with_gradient=False,
                               native_serialization_platforms=tuple(platforms))
    spec = tf.TensorSpec([None, None, None, 3], getattr(tf, dtype), name="input")
    serve = tf.function(_named_output(converted), input_signature=[spec], autograph=False)
    setattr(module, key, serve)
    signatures[key] = serve
  with conv.portable():  # jax2tf traces the JAX function when the tf.function is traced.
    tf.saved_model.save(module, path, signatures=signatures)


def tflite_bytes(program: program_lib.InferenceProgram) -> bytes:
  """The TFLite flatbuffer, converted from a CPU SavedModel of `program` (both signatures).

  Raises:
    ValueError: the model has transposed convolutions, which TFLite's TRANSPOSE_CONV cannot
      run with dynamic sizes (measured: it fails at invoke), or ops the converter cannot
      legalize (OmniSR's 7-D transposes, DAT's gathers of symbolic size).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  if any(eqn.primitive.name == "conv_general_dilated"
         and any(d != 1 for d in eqn.params["lhs_dilation"])
         for eqn in program_lib.equations(program.trace(program.float_fn()))):
    raise ValueError(f"{type(program.model).__name__} has transposed convolutions, which "
                     "TFLite cannot run at dynamic sizes: export --format=onnx, savedmodel or "
                     "stablehlo instead.")

  with tempfile.TemporaryDirectory() as tmp:
    saved = os.path.join(tmp, "savedmodel")
    save_savedmodel(program, saved, platforms=("cpu",))
    converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=list(SIGNATURES))
    try:
      return converter.convert()
    except Exception as e:  # pylint: disable=broad-except
      if type(e).__name__ != "ConverterError":  # tf.lite does not export the class.
        raise
      first = next((line.split("error:", 1)[1].strip() for line in str(e).splitlines()
                    if "error:" in line), "")
      raise ValueError(f"TFLite cannot convert {type(program.model).__name__}: {first} "
                       "Export --format=onnx, savedmodel or stablehlo instead.") from None
