"""ONNX export of a generator, by jaxsr's own jaxpr translator (`jaxpr_to_onnx`).

The model: input `input` float32 `[batch, height, width, 3]` (NHWC, RGB in [0, 1]; height and
width multiples of `multiple`), output `output` float32 `[batch, out_height, out_width, 3]`, not
clipped. Opset `jaxpr_to_onnx.ONNX_OPSET` (18). Dynamic batch, height and width: one file
serves every size.
"""

from typing import Any, Mapping, Optional

import onnx

from jaxsr.export import jaxpr_to_onnx
from jaxsr.export import program as program_lib

OPSET = jaxpr_to_onnx.ONNX_OPSET


def program_to_onnx(program: program_lib.InferenceProgram,
                    metadata: Optional[Mapping[str, str]] = None) -> onnx.ModelProto:
  """The ONNX model of `program.float_fn()`; `metadata` goes into `metadata_props`."""
  closed = program.trace(program.float_fn())
  dim_vars = {name: (axis, program.multiple if axis else 1)
              for name, axis in program_lib.DIM_AXES.items()}
  model = jaxpr_to_onnx.convert(closed, dim_vars, "input", "output",
                                program_lib.INPUT_DIM_NAMES, program_lib.OUTPUT_DIM_NAMES,
                                producer="jaxsr",
                                doc=f"{type(program.model).__name__} x{program.scale}")
  for key, value in (metadata or {}).items():
    model.metadata_props.add(key=str(key), value=str(value))
  return model


def to_onnx_model(model: Any, variables: Mapping[str, Any], multiple: int = 1
                  ) -> onnx.ModelProto:
  """The ONNX model of a generator: `model.apply(variables, x)` (see the module docstring)."""
  return program_to_onnx(program_lib.InferenceProgram(model, dict(variables), multiple))
