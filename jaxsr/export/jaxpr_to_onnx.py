"""A jaxpr -> ONNX translator for the inference programs of jaxsr's generators.

`convert(closed_jaxpr, dim_vars, ...)` walks the jaxpr of one function `x -> y` (parameters are
the jaxpr's constants, stored as ONNX initializers) and emits one or a few ONNX nodes per
primitive. Call-like primitives (`jit`, `custom_jvp_call`, `custom_vjp_call`, `closed_call`,
`checkpoint`) are inlined. An equation whose inputs are all known constants and whose outputs
have static shapes is evaluated here with JAX (constant folding: e.g. SwinIR's relative-position
bias gather), so the graph computes only what depends on the image.

Dynamic sizes. The input's shape holds dimension variables (`jax.export.symbolic_shape`, e.g.
`(b, 4*h, 4*w, 3)`); `dim_vars` says where each is read: name -> (input axis, multiple), so
`h = Shape(input)[1] / 4`. Every symbolic size in the program (reshape targets, iota lengths,
slice bounds) is a polynomial in these variables with floordiv / mod / max / min factors;
`onnx_graph.evaluate_dim` turns it into int64 `[1]` tensors (`Dim`), reading the structure
of JAX's `_DimExpr` (jax 0.10; private, hence pinned by setup.py's jax range).

Broadcasts. `broadcast_in_dim` to a larger shape is kept lazy ("partial": the ONNX tensor has
size-1 axes where the jaxpr value is larger) and left to ONNX's multidirectional broadcasting in
elementwise ops; it is expanded only where a shape-sensitive op needs the full tensor. A bias
add is then `Add(x, bias[1, 1, 1, C])`, not an `Expand` to the image size.

Anything outside the supported set fails with `UnsupportedError` naming the primitive.
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from jax.extend import core as jex_core
import numpy as np
import onnx
from onnx import helper

from jaxsr.export.onnx_graph import (Dim, DimLike, Graph, Tensor, UnsupportedError, Value,
                                     evaluate_dim, is_static)
from jaxsr.export.onnx_rules import RULES

__all__ = ["ONNX_OPSET", "UnsupportedError", "convert"]

ONNX_OPSET = 18
_CALL_JAXPR_PARAMS = ("jaxpr", "call_jaxpr")
_NO_FOLDING = frozenset({"dim_as_value"})  # No inputs, but its value is the image's size.


class _Translator:
  """State of one translation: the graph, the dimension-variable environment and the jaxpr
  environment (jaxpr Var -> `Tensor` or a known numpy constant)."""

  def __init__(self, graph: Graph, dim_env: Mapping[str, Dim]):
    self.graph = graph
    self.dim_env = dict(dim_env)

  # Sizes.
  def dim(self, d: Any) -> DimLike:
    if isinstance(d, (int, np.integer)):
      return int(d)
    return evaluate_dim(d, self.dim_env)

  def shape_tensor(self, shape: Sequence[Any]) -> str:
    return self.graph.ints([self.dim(d) for d in shape])

  # Values.
  def name(self, value: Value) -> str:
    """ONNX name of a value as it is (constants become initializers; partial stays partial)."""
    return value.name if isinstance(value, Tensor) else self.graph.const(value)

  def full(self, value: Value) -> str:
    """ONNX name of a value with its complete shape (a partial one is expanded)."""
    if isinstance(value, Tensor) and value.partial:
      return self.graph.node("Expand", [value.name, self.shape_tensor(value.shape)])
    return self.name(value)

  # The walk.
  def run(self, jaxpr: jex_core.Jaxpr, consts: Sequence[Any], args: Sequence[Value]
          ) -> List[Value]:
    env: Dict[Any, Value] = {}
    for var, value in zip(jaxpr.constvars, consts):
      env[var] = np.asarray(value)
    for var, value in zip(jaxpr.invars, args):
      env[var] = value

    def read(atom):
      return np.asarray(atom.val) if isinstance(atom, jex_core.Literal) else env[atom]

    for eqn in jaxpr.eqns:
      inputs = [read(a) for a in eqn.invars]
      outputs = self.equation(eqn, inputs)
      for var, value in zip(eqn.outvars, outputs):
        if not isinstance(var, jex_core.DropVar):
          env[var] = value
    return [read(a) for a in jaxpr.outvars]

  def equation(self, eqn, inputs: List[Value]) -> List[Value]:
    name = eqn.primitive.name
    sub = next((eqn.params[k] for k in _CALL_JAXPR_PARAMS
                if isinstance(eqn.params.get(k), jex_core.ClosedJaxpr)), None)
    if sub is not None:
      return self.run(sub.jaxpr, sub.consts, inputs)
    out_avals = [v.aval for v in eqn.outvars]
    if (name not in _NO_FOLDING and all(isinstance(v, np.ndarray) for v in inputs)
        and all(is_static(a.shape) for a in out_avals)):
      results = eqn.primitive.bind(*inputs, **eqn.params)
      results = results if eqn.primitive.multiple_results else [results]
      return [np.asarray(r) for r in results]
    rule = RULES.get(name)
    if rule is None:
      raise UnsupportedError(f"ONNX export: the primitive '{name}' is not supported "
                             f"(in `{eqn}`).")
    results = rule(self, eqn, inputs, **eqn.params)
    results = results if isinstance(results, list) else [results]
    return [r if isinstance(r, Tensor) else
            Tensor(r, tuple(a.shape), np.dtype(a.dtype)) for r, a in zip(results, out_avals)]


# Rules: (translator, eqn, inputs, **params) -> ONNX name(s) or `Tensor`(s).


def convert(closed_jaxpr: jex_core.ClosedJaxpr, dim_vars: Mapping[str, Tuple[int, int]],
            input_name: str = "input", output_name: str = "output",
            input_dim_names: Sequence[Optional[str]] = (),
            output_dim_names: Sequence[Optional[str]] = (), opset: int = ONNX_OPSET,
            producer: str = "jaxsr", doc: str = "") -> onnx.ModelProto:
  """ONNX model of a one-input one-output jaxpr.

  Args:
    closed_jaxpr: `jax.make_jaxpr(f)(x_spec)`; its constants become initializers.
    dim_vars: dimension variable -> (input axis, multiple): the variable is
      `Shape(input)[axis] / multiple`.
    input_name / output_name: graph input / output names.
    input_dim_names / output_dim_names: `dim_param` names of the symbolic axes (None: unnamed).
    opset: default-domain opset (>= 18).
    producer / doc: recorded in the model.

  Returns:
    A checked `onnx.ModelProto`.

  Raises:
    UnsupportedError: a primitive without a translation rule.
  """
  jaxpr = closed_jaxpr.jaxpr
  if len(jaxpr.invars) != 1 or len(jaxpr.outvars) != 1:
    raise ValueError("convert() takes a function of one array returning one array.")
  in_aval, out_aval = jaxpr.invars[0].aval, jaxpr.outvars[0].aval
  graph = Graph()
  shape = graph.node("Shape", [input_name])
  dim_env = {}
  for var, (axis, multiple) in dim_vars.items():
    size = graph.node("Slice", [shape, graph.const(np.array([axis], np.int64)),
                                graph.const(np.array([axis + 1], np.int64))])
    dim_env[var] = Dim(graph, size) // multiple if multiple != 1 else Dim(graph, size)
  translator = _Translator(graph, dim_env)
  x = Tensor(input_name, tuple(in_aval.shape), np.dtype(in_aval.dtype))
  (y,) = translator.run(jaxpr, closed_jaxpr.consts, [x])
  graph.nodes.append(helper.make_node("Identity", [translator.full(y)], [output_name],
                                      name=output_name))

  def value_info(name, aval, dim_names):
    dims = [d if is_static([d]) else (dim_names[i] if i < len(dim_names) else None)
            for i, d in enumerate(aval.shape)]
    return helper.make_tensor_value_info(
        name, helper.np_dtype_to_tensor_dtype(np.dtype(aval.dtype)),
        [int(d) if isinstance(d, (int, np.integer)) else d for d in dims])

  nodes = graph.without_dead_nodes([output_name])
  used = {name for node in nodes for name in node.input}
  onnx_graph = helper.make_graph(nodes, "jaxsr",
                                 [value_info(input_name, in_aval, input_dim_names)],
                                 [value_info(output_name, out_aval, output_dim_names)],
                                 initializer=[i for i in graph.initializers if i.name in used])
  model = helper.make_model(onnx_graph, producer_name=producer, doc_string=doc,
                            opset_imports=[helper.make_opsetid("", opset)])
  model.ir_version = min(model.ir_version, 10)  # Readable by onnxruntime >= 1.20.
  onnx.checker.check_model(model)
  return model
