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
`_evaluate_dim` turns it into int64 `[1]` tensors (`_Dim`), reading the structure of JAX's
`_DimExpr` (jax 0.10; private, hence pinned by setup.py's jax range).

Broadcasts. `broadcast_in_dim` to a larger shape is kept lazy ("partial": the ONNX tensor has
size-1 axes where the jaxpr value is larger) and left to ONNX's multidirectional broadcasting in
elementwise ops; it is expanded only where a shape-sensitive op needs the full tensor. A bias
add is then `Add(x, bias[1, 1, 1, C])`, not an `Expand` to the image size.

Anything outside the supported set fails with `UnsupportedError` naming the primitive.
"""

import dataclasses
import itertools
import operator
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import jax
from jax.extend import core as jex_core
import numpy as np
import onnx
from onnx import helper
from onnx import numpy_helper

ONNX_OPSET = 18
_INT64_MIN = np.iinfo(np.int64).min
_INT64_MAX = np.iinfo(np.int64).max
_ELEMENTWISE = {
    "add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "max": "Max", "min": "Min",
    "pow": "Pow", "neg": "Neg", "abs": "Abs", "exp": "Exp", "log": "Log", "sqrt": "Sqrt",
    "tanh": "Tanh", "logistic": "Sigmoid", "erf": "Erf", "floor": "Floor", "ceil": "Ceil",
    "sign": "Sign", "ge": "GreaterOrEqual", "gt": "Greater", "le": "LessOrEqual", "lt": "Less",
    "eq": "Equal", "and": "And", "or": "Or", "not": "Not", "xor": "Xor", "sin": "Sin",
    "cos": "Cos",
}
_CALL_JAXPR_PARAMS = ("jaxpr", "call_jaxpr")
_NO_FOLDING = frozenset({"dim_as_value"})  # No inputs, but its value is the image's size.


class UnsupportedError(ValueError):
  """The program uses a primitive (or a form of one) this translator does not handle."""


@dataclasses.dataclass
class _Tensor:
  """A graph value: ONNX name, the jaxpr value's shape (ints / symbolic) and dtype; `partial`
  when the ONNX tensor only broadcasts to that shape."""
  name: str
  shape: Tuple[Any, ...]
  dtype: np.dtype
  partial: bool = False


Value = Union[_Tensor, np.ndarray]


class _Graph:
  """Nodes and initializers under construction, with unique names."""

  def __init__(self):
    self.nodes: List[onnx.NodeProto] = []
    self.initializers: List[onnx.TensorProto] = []
    self._counter = itertools.count()
    self._consts: Dict[Tuple, str] = {}
    self._alive: List[Any] = []  # Keeps ids of deduplicated large values unique.

  def fresh(self, prefix: str) -> str:
    return f"{prefix}_{next(self._counter)}"

  def node(self, op: str, inputs: Sequence[str], num_outputs: int = 1, **attrs) -> Any:
    outputs = [self.fresh(op.lower()) for _ in range(num_outputs)]
    self.nodes.append(helper.make_node(op, list(inputs), outputs, name=outputs[0], **attrs))
    return outputs[0] if num_outputs == 1 else outputs

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
      self._consts[key] = name
      self._alive.append(value)
    return self._consts[key]

  def ints(self, values: Sequence["_DimLike"]) -> str:
    """A 1-D int64 tensor of `values` (ints or `_Dim`s)."""
    if all(isinstance(v, (int, np.integer)) for v in values):
      return self.const(np.array(values, np.int64))
    parts = [v.name if isinstance(v, _Dim) else self.const(np.array([v], np.int64))
             for v in values]
    return self.node("Concat", parts, axis=0) if len(parts) > 1 else parts[0]


class _Dim:
  """A runtime size: an int64 `[1]` tensor of `graph`. Arithmetic emits nodes (sizes are
  positive, so ONNX's truncating integer `Div` is floor division)."""
  __array_ufunc__ = None  # numpy scalars defer to our reflected operators.

  def __init__(self, graph: _Graph, name: str):
    self.graph, self.name = graph, name

  def _binary(self, other: "_DimLike", op: str, reverse: bool = False) -> "_Dim":
    other_name = (other.name if isinstance(other, _Dim)
                  else self.graph.const(np.array([int(other)], np.int64)))
    args = [other_name, self.name] if reverse else [self.name, other_name]
    return _Dim(self.graph, self.graph.node(op, args))

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

  def __neg__(self) -> "_Dim":
    return 0 - self

  def extreme(self, other: "_DimLike", op: str) -> "_Dim":
    """Max or Min (`op`) of two sizes."""
    return self._binary(other, op)


def _extreme(a: "_DimLike", b: "_DimLike", op: str) -> "_DimLike":
  if isinstance(a, _Dim):
    return a.extreme(b, op)
  if isinstance(b, _Dim):
    return b.extreme(a, op)
  return max(a, b) if op == "Max" else min(a, b)


def _evaluate_dim(expr: Any, env: Mapping[str, "_DimLike"]) -> "_DimLike":
  """A symbolic dimension (or int) as an int or a `_Dim`: sum of coefficient * product of
  factors; a factor is a variable or floordiv / mod / max / min of two expressions."""
  if isinstance(expr, (int, np.integer)):
    return int(expr)
  total: _DimLike = 0
  for term, coefficient in expr._sorted_terms:  # pylint: disable=protected-access
    value: _DimLike = coefficient
    for factor, power in term._factors:  # pylint: disable=protected-access
      if factor.var is not None:
        base = env[factor.var]
      else:
        a, b = (_evaluate_dim(o, env) for o in factor.operands)
        ops = {"floordiv": operator.floordiv, "mod": operator.mod,
               "max": lambda x, y: _extreme(x, y, "Max"),
               "min": lambda x, y: _extreme(x, y, "Min")}
        base = ops[factor.operation](a, b)
      for _ in range(power):
        value = base * value if isinstance(base, _Dim) else value * base
    total = value + total if isinstance(value, _Dim) else total + value
  return total


_DimLike = Union[int, _Dim]


def _is_static(shape: Sequence[Any]) -> bool:
  return all(isinstance(d, (int, np.integer)) for d in shape)


class _Translator:
  """State of one translation: the graph, the dimension-variable environment and the jaxpr
  environment (jaxpr Var -> `_Tensor` or a known numpy constant)."""

  def __init__(self, graph: _Graph, dim_env: Mapping[str, _Dim]):
    self.graph = graph
    self.dim_env = dict(dim_env)

  # Sizes.
  def dim(self, d: Any) -> _DimLike:
    if isinstance(d, (int, np.integer)):
      return int(d)
    return _evaluate_dim(d, self.dim_env)

  def shape_tensor(self, shape: Sequence[Any]) -> str:
    return self.graph.ints([self.dim(d) for d in shape])

  # Values.
  def name(self, value: Value) -> str:
    """ONNX name of a value as it is (constants become initializers; partial stays partial)."""
    return value.name if isinstance(value, _Tensor) else self.graph.const(value)

  def full(self, value: Value) -> str:
    """ONNX name of a value with its complete shape (a partial one is expanded)."""
    if isinstance(value, _Tensor) and value.partial:
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
        and all(_is_static(a.shape) for a in out_avals)):
      results = eqn.primitive.bind(*inputs, **eqn.params)
      results = results if eqn.primitive.multiple_results else [results]
      return [np.asarray(r) for r in results]
    rule = _RULES.get(name)
    if rule is None:
      raise UnsupportedError(f"ONNX export: the primitive '{name}' is not supported "
                             f"(in `{eqn}`).")
    results = rule(self, eqn, inputs, **eqn.params)
    results = results if isinstance(results, list) else [results]
    return [r if isinstance(r, _Tensor) else
            _Tensor(r, tuple(a.shape), np.dtype(a.dtype)) for r, a in zip(results, out_avals)]


# Rules: (translator, eqn, inputs, **params) -> ONNX name(s) or `_Tensor`(s).
Rule = Callable[..., Any]
_RULES: Dict[str, Rule] = {}


def _rule(*names: str) -> Callable[[Rule], Rule]:
  def register(fn: Rule) -> Rule:
    for n in names:
      _RULES[n] = fn
    return fn
  return register


def _out(eqn) -> Tuple[Tuple[Any, ...], np.dtype]:
  aval = eqn.outvars[0].aval
  return tuple(aval.shape), np.dtype(aval.dtype)


def _elementwise_result(t: _Translator, eqn, inputs: List[Value], name: str) -> _Tensor:
  """`name` as the output, partial unless some input already has the full output shape."""
  shape, dtype = _out(eqn)
  full = any((isinstance(v, _Tensor) and not v.partial and tuple(v.shape) == shape)
             or (isinstance(v, np.ndarray) and v.shape == shape) for v in inputs)
  return _Tensor(name, shape, dtype, partial=not full)


def _make_elementwise(op: str) -> Rule:
  def rule(t: _Translator, eqn, inputs, **_):
    return _elementwise_result(t, eqn, inputs, t.graph.node(op, [t.name(v) for v in inputs]))
  return rule


for _jax_name, _onnx_op in _ELEMENTWISE.items():
  _RULES[_jax_name] = _make_elementwise(_onnx_op)


def _unary(t: _Translator, eqn, inputs, build: Callable[[str], str]) -> _Tensor:
  return _elementwise_result(t, eqn, inputs, build(t.name(inputs[0])))


@_rule("ne")
def _ne(t, eqn, inputs, **_):
  equal = t.graph.node("Equal", [t.name(v) for v in inputs])
  return _elementwise_result(t, eqn, inputs, t.graph.node("Not", [equal]))


@_rule("rsqrt")
def _rsqrt(t, eqn, inputs, **_):
  return _unary(t, eqn, inputs, lambda x: t.graph.node("Reciprocal", [t.graph.node("Sqrt", [x])]))


@_rule("erfc")
def _erfc(t, eqn, inputs, **_):
  one = t.graph.const(1, _out(eqn)[1])
  return _unary(t, eqn, inputs, lambda x: t.graph.node("Sub", [one, t.graph.node("Erf", [x])]))


@_rule("square")
def _square(t, eqn, inputs, **_):
  return _unary(t, eqn, inputs, lambda x: t.graph.node("Mul", [x, x]))


@_rule("integer_pow")
def _integer_pow(t, eqn, inputs, y, **_):
  dtype = _out(eqn)[1]
  return _unary(t, eqn, inputs, lambda x: t.graph.node("Pow", [x, t.graph.const(y, dtype)]))


@_rule("rem")
def _rem(t, eqn, inputs, **_):  # C-style remainder (sign of the dividend).
  return _elementwise_result(t, eqn, inputs, t.graph.node("Mod", [t.name(v) for v in inputs],
                                                          fmod=1))


@_rule("round")
def _round(t, eqn, inputs, rounding_method, **_):
  if int(rounding_method) == 1:  # To nearest even: ONNX Round.
    return _unary(t, eqn, inputs, lambda x: t.graph.node("Round", [x]))
  dtype = _out(eqn)[1]  # Away from zero: sign(x) * floor(|x| + 0.5).
  g = t.graph
  return _unary(t, eqn, inputs, lambda x: g.node("Mul", [g.node("Sign", [x]), g.node(
      "Floor", [g.node("Add", [g.node("Abs", [x]), g.const(0.5, dtype)])])]))


@_rule("select_n")
def _select_n(t, eqn, inputs, **_):
  if len(inputs) != 3 or inputs[0].dtype != np.bool_:
    raise UnsupportedError("ONNX export: select_n with other than a boolean and two cases.")
  pred, case0, case1 = inputs
  return _elementwise_result(t, eqn, inputs, t.graph.node(
      "Where", [t.name(pred), t.name(case1), t.name(case0)]))


@_rule("clamp")
def _clamp(t, eqn, inputs, **_):
  low, x, high = (t.name(v) for v in inputs)
  return _elementwise_result(t, eqn, inputs, t.graph.node(
      "Min", [t.graph.node("Max", [x, low]), high]))


@_rule("convert_element_type")
def _convert(t, eqn, inputs, new_dtype, **_):
  x = inputs[0]
  result = t.graph.node("Cast", [t.name(x)],
                        to=helper.np_dtype_to_tensor_dtype(np.dtype(new_dtype)))
  return _elementwise_result(t, eqn, inputs, result)


@_rule("copy", "copy_p", "reduce_precision", "optimization_barrier", "stop_gradient")
def _identity(t, eqn, inputs, **_):
  return [dataclasses.replace(v, shape=tuple(a.aval.shape)) if isinstance(v, _Tensor) else v
          for v, a in zip(inputs, eqn.outvars)]


@_rule("broadcast_in_dim")
def _broadcast_in_dim(t, eqn, inputs, shape, broadcast_dimensions, **_):
  x = inputs[0]
  in_shape = tuple(x.shape)
  missing = [i for i in range(len(shape)) if i not in broadcast_dimensions]
  name = t.name(x)
  if missing:
    name = t.graph.node("Unsqueeze", [name, t.graph.const(np.array(missing, np.int64))])
  same = all(in_shape[j] is shape[i] or (_is_static((in_shape[j], shape[i]))
                                         and in_shape[j] == shape[i])
             for j, i in enumerate(broadcast_dimensions))
  partial = bool(missing) or not same or (isinstance(x, _Tensor) and x.partial)
  return _Tensor(name, tuple(shape), np.dtype(eqn.outvars[0].aval.dtype), partial=partial)


@_rule("reshape")
def _reshape(t, eqn, inputs, new_sizes, dimensions=None, **_):
  if dimensions is not None:
    raise UnsupportedError("ONNX export: reshape with `dimensions`.")
  return t.graph.node("Reshape", [t.full(inputs[0]), t.shape_tensor(new_sizes)])


@_rule("squeeze")
def _squeeze(t, eqn, inputs, dimensions, **_):
  return t.graph.node("Squeeze", [t.full(inputs[0]),
                                  t.graph.const(np.array(dimensions, np.int64))])


@_rule("transpose")
def _transpose(t, eqn, inputs, permutation, **_):
  x = inputs[0]
  name = t.graph.node("Transpose", [t.name(x)], perm=list(permutation))
  shape, dtype = _out(eqn)
  return _Tensor(name, shape, dtype, partial=isinstance(x, _Tensor) and x.partial)


@_rule("concatenate")
def _concatenate(t, eqn, inputs, dimension, **_):
  return t.graph.node("Concat", [t.full(v) for v in inputs], axis=int(dimension))


@_rule("split")
def _split(t, eqn, inputs, sizes, axis, **_):
  return list(t.graph.node("Split", [t.full(inputs[0]), t.graph.ints([t.dim(s) for s in sizes])],
                           num_outputs=len(sizes), axis=int(axis)))


@_rule("gather")
def _gather(t, eqn, inputs, dimension_numbers, slice_sizes, **_):
  """Only a gather that is a static slice (jnp indexing with constant indices on symbolic
  shapes): one constant index vector, no batching dims."""
  operand, indices = inputs
  dn = dimension_numbers
  if (not isinstance(indices, np.ndarray) or indices.size != len(dn.start_index_map)
      or dn.operand_batching_dims or len(dn.offset_dims) + len(dn.collapsed_slice_dims)
      != len(operand.shape)):
    raise UnsupportedError("ONNX export: gather other than a slice at constant indices.")
  index = dict(zip(dn.start_index_map, indices.reshape(-1).tolist()))
  rank = len(operand.shape)
  starts = [int(index.get(a, 0)) for a in range(rank)]
  ends = [t.dim(slice_sizes[a]) + starts[a] for a in range(rank)]
  name = _slice(t, t.full(operand), starts, ends, range(rank), [1] * rank)
  if dn.collapsed_slice_dims:
    name = t.graph.node("Squeeze", [name, t.graph.const(np.array(dn.collapsed_slice_dims,
                                                                  np.int64))])
  return name


def _slice(t: _Translator, x: str, starts, ends, axes, steps) -> str:
  g = t.graph
  return g.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints(list(axes)), g.ints(steps)])


@_rule("slice")
def _slice_rule(t, eqn, inputs, start_indices, limit_indices, strides=None, **_):
  rank = len(start_indices)
  steps = list(strides) if strides is not None else [1] * rank
  return _slice(t, t.full(inputs[0]), [t.dim(s) for s in start_indices],
                [t.dim(e) for e in limit_indices], range(rank), steps)


@_rule("rev")
def _rev(t, eqn, inputs, dimensions, **_):
  n = len(dimensions)
  return _slice(t, t.full(inputs[0]), [-1] * n, [_INT64_MIN] * n, dimensions, [-1] * n)


@_rule("pad")
def _pad(t, eqn, inputs, padding_config, **_):
  x, value = inputs
  if any(interior != 0 for _, _, interior in padding_config):
    raise UnsupportedError("ONNX export: pad with interior padding.")
  name = t.full(x)
  shape = tuple(x.shape)
  lows = [t.dim(lo) for lo, _, _ in padding_config]
  highs = [t.dim(hi) for _, hi, _ in padding_config]
  negative = lambda d: isinstance(d, int) and d < 0
  if any(negative(d) for d in lows + highs):  # Crops: a Slice first.
    rank = len(shape)
    ends = [(t.dim(shape[i]) + h) if negative(h) else _INT64_MAX
            for i, h in enumerate(highs)]
    name = _slice(t, name, [-lo if negative(lo) else 0 for lo in lows], ends, range(rank),
                  [1] * rank)
    lows = [0 if negative(d) else d for d in lows]
    highs = [0 if negative(d) else d for d in highs]
  if all(d == 0 for d in lows + highs if isinstance(d, int)) and _is_static(lows + highs):
    return t.graph.node("Identity", [name])
  return t.graph.node("Pad", [name, t.graph.ints(lows + highs), t.name(value)], mode="constant")


@_rule("iota")
def _iota(t, eqn, inputs, dtype, shape, dimension, **_):
  g = t.graph
  size = t.dim(shape[dimension])
  limit = size.name if isinstance(size, _Dim) else g.const(np.array([size], np.int64))
  limit = g.node("Squeeze", [limit, g.const(np.array([0], np.int64))])
  values = g.node("Range", [g.const(np.int64(0)), limit, g.const(np.int64(1))])
  values = g.node("Cast", [values], to=helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
  axes = [i for i in range(len(shape)) if i != dimension]
  if axes:
    values = g.node("Unsqueeze", [values, g.const(np.array(axes, np.int64))])
  return _Tensor(values, tuple(shape), np.dtype(dtype), partial=len(shape) > 1)


@_rule("dim_as_value")
def _dim_as_value(t, eqn, inputs, dim, **_):
  g = t.graph
  value = t.dim(dim)
  name = value.name if isinstance(value, _Dim) else g.const(np.array([value], np.int64))
  scalar = g.node("Squeeze", [name, g.const(np.array([0], np.int64))])
  return g.node("Cast", [scalar], to=helper.np_dtype_to_tensor_dtype(_out(eqn)[1]))


def _reduce(op: str) -> Rule:
  def rule(t, eqn, inputs, axes, **_):
    return t.graph.node(op, [t.full(inputs[0]), t.graph.const(np.array(axes, np.int64))],
                        keepdims=0)
  return rule


for _jax_name, _onnx_op in (("reduce_sum", "ReduceSum"), ("reduce_max", "ReduceMax"),
                            ("reduce_min", "ReduceMin"), ("reduce_prod", "ReduceProd")):
  _RULES[_jax_name] = _reduce(_onnx_op)


@_rule("conv_general_dilated")
def _conv(t, eqn, inputs, window_strides, padding, lhs_dilation, rhs_dilation,
          dimension_numbers, feature_group_count, batch_group_count, **_):
  """Conv in NCHW between two Transposes; with `lhs_dilation` (Flax `ConvTranspose`), ONNX
  ConvTranspose with the kernel flipped and its channels swapped."""
  if batch_group_count != 1:
    raise UnsupportedError("ONNX export: batch-grouped convolution.")
  lhs_spec, rhs_spec, out_spec = dimension_numbers
  x, kernel = inputs
  g = t.graph
  transposed = any(d != 1 for d in lhs_dilation)
  if transposed and (any(d != 1 for d in rhs_dilation) or any(s != 1 for s in window_strides)
                     or feature_group_count != 1):
    raise UnsupportedError("ONNX export: input-dilated convolution with strides, kernel "
                           "dilation or groups.")
  if transposed:  # OIHW -> IOHW, flipped in space.
    spatial = tuple(range(2, len(rhs_spec)))
    to_weight = lambda k: np.flip(np.transpose(k, rhs_spec), spatial).swapaxes(0, 1)
  else:
    to_weight = lambda k: np.transpose(k, rhs_spec)
  if isinstance(kernel, np.ndarray):  # Weights: converted here, stored once.
    weight = g.const(np.ascontiguousarray(to_weight(kernel)))
  else:
    raise UnsupportedError("ONNX export: a convolution kernel computed from the input.")
  x_nchw = g.node("Transpose", [t.full(x)], perm=list(lhs_spec))
  if transposed:
    sizes = [kernel.shape[d] for d in rhs_spec[2:]]
    begins = [k - 1 - lo for k, (lo, _) in zip(sizes, padding)]
    ends = [max(k - 1 - hi, 0) for k, (_, hi) in zip(sizes, padding)]
    extra = [max(hi - (k - 1), 0) for k, (_, hi) in zip(sizes, padding)]
    if any(b < 0 for b in begins) or any(e >= s for e, s in zip(extra, lhs_dilation)):
      raise UnsupportedError("ONNX export: input-dilated convolution with this padding.")
    y = g.node("ConvTranspose", [x_nchw, weight], strides=list(lhs_dilation),
               pads=begins + ends, output_padding=extra)
  else:
    pads = [lo for lo, _ in padding] + [hi for _, hi in padding]
    y = g.node("Conv", [x_nchw, weight], strides=list(window_strides), pads=pads,
               dilations=list(rhs_dilation), group=int(feature_group_count))
  return g.node("Transpose", [y], perm=[int(i) for i in np.argsort(out_spec)])


@_rule("dot_general")
def _dot_general(t, eqn, inputs, dimension_numbers, **_):
  (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
  lhs, rhs = inputs
  letters = iter("abcdefghijklmnopqrstuvwxyz")
  lhs_letters = [next(letters) for _ in lhs.shape]
  rhs_letters = [None] * len(rhs.shape)
  for i, j in itertools.chain(zip(lhs_contract, rhs_contract), zip(lhs_batch, rhs_batch)):
    rhs_letters[j] = lhs_letters[i]
  rhs_letters = [c or next(letters) for c in rhs_letters]
  out = ([lhs_letters[i] for i in lhs_batch]
         + [c for i, c in enumerate(lhs_letters) if i not in lhs_contract + lhs_batch]
         + [c for j, c in enumerate(rhs_letters) if j not in rhs_contract + rhs_batch])
  equation = f"{''.join(lhs_letters)},{''.join(rhs_letters)}->{''.join(out)}"
  result = t.graph.node("Einsum", [t.full(lhs), t.full(rhs)], equation=equation)
  dtype = _out(eqn)[1]
  if np.dtype(lhs.dtype) != dtype:  # preferred_element_type.
    result = t.graph.node("Cast", [result], to=helper.np_dtype_to_tensor_dtype(dtype))
  return result


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
  graph = _Graph()
  shape = graph.node("Shape", [input_name])
  dim_env = {}
  for var, (axis, multiple) in dim_vars.items():
    size = graph.node("Slice", [shape, graph.const(np.array([axis], np.int64)),
                                graph.const(np.array([axis + 1], np.int64))])
    dim_env[var] = _Dim(graph, size) // multiple if multiple != 1 else _Dim(graph, size)
  translator = _Translator(graph, dim_env)
  x = _Tensor(input_name, tuple(in_aval.shape), np.dtype(in_aval.dtype))
  (y,) = translator.run(jaxpr, closed_jaxpr.consts, [x])
  graph.nodes.append(helper.make_node("Identity", [translator.full(y)], [output_name],
                                      name=output_name))

  def value_info(name, aval, dim_names):
    dims = [d if _is_static([d]) else (dim_names[i] if i < len(dim_names) else None)
            for i, d in enumerate(aval.shape)]
    return helper.make_tensor_value_info(
        name, helper.np_dtype_to_tensor_dtype(np.dtype(aval.dtype)),
        [int(d) if isinstance(d, (int, np.integer)) else d for d in dims])

  onnx_graph = helper.make_graph(graph.nodes, "jaxsr",
                                 [value_info(input_name, in_aval, input_dim_names)],
                                 [value_info(output_name, out_aval, output_dim_names)],
                                 initializer=graph.initializers)
  model = helper.make_model(onnx_graph, producer_name=producer, doc_string=doc,
                            opset_imports=[helper.make_opsetid("", opset)])
  model.ir_version = min(model.ir_version, 10)  # Readable by onnxruntime >= 1.20.
  onnx.checker.check_model(model)
  return model
