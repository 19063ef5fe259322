"""Building blocks of the jaxpr -> ONNX translator (`jaxpr_to_onnx`): the graph under
construction (`Graph`), graph values (`Tensor`) and runtime sizes (`Dim`), with the evaluation of
JAX's symbolic dimension expressions into ONNX nodes (`evaluate_dim`)."""

import dataclasses
import itertools
import operator
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np
import onnx
from onnx import helper
from onnx import numpy_helper

class UnsupportedError(ValueError):
  """The program uses a primitive (or a form of one) this translator does not handle."""


@dataclasses.dataclass
class Tensor:
  """A graph value: ONNX name, the jaxpr value's shape (ints / symbolic) and dtype; `partial`
  when the ONNX tensor only broadcasts to that shape."""
  name: str
  shape: Tuple[Any, ...]
  dtype: np.dtype
  partial: bool = False


Value = Union[Tensor, np.ndarray]


class Graph:
  """Nodes and initializers under construction, with unique names."""

  def __init__(self):
    self.nodes: List[onnx.NodeProto] = []
    self.initializers: List[onnx.TensorProto] = []
    self._counter = itertools.count()
    self._consts: Dict[Tuple, str] = {}
    self._alive: List[Any] = []  # Keeps ids of deduplicated large values unique.
    self.producers: Dict[str, onnx.NodeProto] = {}  # Output name -> node.
    self.const_values: Dict[str, np.ndarray] = {}  # Initializer name -> value.

  def fresh(self, prefix: str) -> str:
    return f"{prefix}_{next(self._counter)}"

  def node(self, op: str, inputs: Sequence[str], num_outputs: int = 1, **attrs) -> Any:
    outputs = [self.fresh(op.lower()) for _ in range(num_outputs)]
    node = helper.make_node(op, list(inputs), outputs, name=outputs[0], **attrs)
    self.nodes.append(node)
    self.producers.update((o, node) for o in outputs)
    return outputs[0] if num_outputs == 1 else outputs

  def without_dead_nodes(self, outputs: Sequence[str]) -> List[onnx.NodeProto]:
    """The nodes that `outputs` depend on (rules may leave nodes a fused op replaced)."""
    needed, live = set(outputs), []
    for node in reversed(self.nodes):
      if any(o in needed for o in node.output):
        live.append(node)
        needed.update(node.input)
    return live[::-1]

  def const(self, value: Any, dtype: Any = None) -> str:
    """An initializer holding `value` (deduplicated by content for small arrays, by identity
    for large ones)."""
    array = np.asarray(value, dtype=dtype)
    if array.dtype == np.float64 and dtype is None:
      array = array.astype(np.float32)
    key = ((array.dtype.str, array.shape, array.tobytes()) if array.size <= 64
           else ("id", id(value), array.dtype.str))
    if key not in self._consts:
      name = self.fresh("const")
      self.initializers.append(numpy_helper.from_array(array.copy(order="C"), name))
      self.const_values[name] = array
      self._consts[key] = name
      self._alive.append(value)
    return self._consts[key]

  def ints(self, values: Sequence["DimLike"]) -> str:
    """A 1-D int64 tensor of `values` (ints or `Dim`s)."""
    if all(isinstance(v, (int, np.integer)) for v in values):
      return self.const(np.array(values, np.int64))
    parts = [v.name if isinstance(v, Dim) else self.const(np.array([v], np.int64))
             for v in values]
    return self.node("Concat", parts, axis=0) if len(parts) > 1 else parts[0]


class Dim:
  """A runtime size: an int64 `[1]` tensor of `graph`. Arithmetic emits nodes (sizes are
  positive, so ONNX's truncating integer `Div` is floor division)."""
  __array_ufunc__ = None  # numpy scalars defer to our reflected operators.

  def __init__(self, graph: Graph, name: str):
    self.graph, self.name = graph, name

  def _binary(self, other: "DimLike", op: str, reverse: bool = False) -> "Dim":
    other_name = (other.name if isinstance(other, Dim)
                  else self.graph.const(np.array([int(other)], np.int64)))
    args = [other_name, self.name] if reverse else [self.name, other_name]
    return Dim(self.graph, self.graph.node(op, args))

  __add__ = lambda self, o: self._binary(o, "Add")
  __radd__ = lambda self, o: self._binary(o, "Add", True)
  __sub__ = lambda self, o: self._binary(o, "Sub")
  __rsub__ = lambda self, o: self._binary(o, "Sub", True)
  __mul__ = lambda self, o: self._binary(o, "Mul")
  __rmul__ = lambda self, o: self._binary(o, "Mul", True)
  __floordiv__ = lambda self, o: self._binary(o, "Div")
  __rfloordiv__ = lambda self, o: self._binary(o, "Div", True)
  __mod__ = lambda self, o: self._binary(o, "Mod")
  __rmod__ = lambda self, o: self._binary(o, "Mod", True)
  __divmod__ = lambda self, o: (self // o, self % o)
  __rdivmod__ = lambda self, o: (self.__rfloordiv__(o), self.__rmod__(o))

  def __neg__(self) -> "Dim":
    return 0 - self

  def extreme(self, other: "DimLike", op: str) -> "Dim":
    """Max or Min (`op`) of two sizes."""
    return self._binary(other, op)


def _extreme(a: "DimLike", b: "DimLike", op: str) -> "DimLike":
  if isinstance(a, Dim):
    return a.extreme(b, op)
  if isinstance(b, Dim):
    return b.extreme(a, op)
  return max(a, b) if op == "Max" else min(a, b)


def evaluate_dim(expr: Any, env: Mapping[str, "DimLike"]) -> "DimLike":
  """A symbolic dimension (or int) as an int or a `Dim`: sum of coefficient * product of
  factors; a factor is a variable or floordiv / mod / max / min of two expressions."""
  if isinstance(expr, (int, np.integer)):
    return int(expr)
  total: DimLike = 0
  for term, coefficient in expr._sorted_terms:  # pylint: disable=protected-access
    value: DimLike = coefficient
    for factor, power in term._factors:  # pylint: disable=protected-access
      if factor.var is not None:
        base = env[factor.var]
      else:
        a, b = (evaluate_dim(o, env) for o in factor.operands)
        ops = {"floordiv": operator.floordiv, "mod": operator.mod,
               "max": lambda x, y: _extreme(x, y, "Max"),
               "min": lambda x, y: _extreme(x, y, "Min")}
        base = ops[factor.operation](a, b)
      for _ in range(power):
        value = base * value if isinstance(base, Dim) else value * base
    total = value + total if isinstance(value, Dim) else total + value
  return total


DimLike = Union[int, Dim]


def is_static(shape: Sequence[Any]) -> bool:
  return all(isinstance(d, (int, np.integer)) for d in shape)
