"""Translation rules of `jaxpr_to_onnx`: primitive name -> `rule(translator, eqn, inputs,
**params)`, returning the ONNX name(s) or `Tensor`(s) of the equation's outputs. `translator`
gives `graph`, `name(v)` / `full(v)` (ONNX name of a value, expanded to its full shape) and
`dim(d)` / `shape_tensor(shape)` (sizes as ints or `Dim`s)."""

import dataclasses
import itertools
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
from onnx import helper

from jaxsr.export.onnx_graph import Dim, Tensor, UnsupportedError, Value, is_static

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

Rule = Callable[..., Any]
RULES: Dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
  def register(fn: Rule) -> Rule:
    for n in names:
      RULES[n] = fn
    return fn
  return register


def output_aval(eqn) -> Tuple[Tuple[Any, ...], np.dtype]:
  aval = eqn.outvars[0].aval
  return tuple(aval.shape), np.dtype(aval.dtype)


def _elementwise_result(t, eqn, inputs: List[Value], name: str) -> Tensor:
  """`name` as the output, partial unless some input already has the full output shape."""
  shape, dtype = output_aval(eqn)
  full = any((isinstance(v, Tensor) and not v.partial and tuple(v.shape) == shape)
             or (isinstance(v, np.ndarray) and v.shape == shape) for v in inputs)
  return Tensor(name, shape, dtype, partial=not full)


def _make_elementwise(op: str) -> Rule:
  def translate(t, eqn, inputs, **_):
    return _elementwise_result(t, eqn, inputs, t.graph.node(op, [t.name(v) for v in inputs]))
  return translate


for _jax_name, _onnx_op in _ELEMENTWISE.items():
  RULES[_jax_name] = _make_elementwise(_onnx_op)


def _unary(t, eqn, inputs, build: Callable[[str], str]) -> Tensor:
  return _elementwise_result(t, eqn, inputs, build(t.name(inputs[0])))


@rule("add")
def _add(t, eqn, inputs, **_):
  """Add; a constant per-channel bias added to a convolution's output goes into its Conv."""
  names = [t.name(v) for v in inputs]
  for conv_out, bias in (names, names[::-1]):
    fused = _conv_with_bias(t.graph, conv_out, bias)
    if fused is not None:
      return _elementwise_result(t, eqn, inputs, fused)
  return _elementwise_result(t, eqn, inputs, t.graph.node("Add", names))


def _conv_with_bias(g, conv_out: str, bias: str):
  """`Transpose(Conv(x, W))` + b, b constant `[1, ..., 1, C]` on the Transpose's channel axis,
  as `Transpose(Conv(x, W, b))`; None when the operands are not that pattern."""
  transpose = g.producers.get(conv_out)
  value = g.const_values.get(bias)
  if transpose is None or transpose.op_type != "Transpose" or value is None:
    return None
  conv = g.producers.get(transpose.input[0])
  perm = list(next(a.ints for a in transpose.attribute if a.name == "perm"))
  if (conv is None or conv.op_type not in ("Conv", "ConvTranspose") or len(conv.input) != 2
      or value.ndim != len(perm) or value.dtype.kind != "f"):
    return None
  channel_axis = perm.index(1)  # Where the Conv's channel axis went.
  if any(n != 1 for i, n in enumerate(value.shape) if i != channel_axis):
    return None
  attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
  new_conv = g.node(conv.op_type, [*conv.input, g.const(value.reshape(-1))], **attrs)
  return g.node("Transpose", [new_conv], perm=perm)


@rule("ne")
def _ne(t, eqn, inputs, **_):
  equal = t.graph.node("Equal", [t.name(v) for v in inputs])
  return _elementwise_result(t, eqn, inputs, t.graph.node("Not", [equal]))


@rule("rsqrt")
def _rsqrt(t, eqn, inputs, **_):
  return _unary(t, eqn, inputs, lambda x: t.graph.node("Reciprocal", [t.graph.node("Sqrt", [x])]))


@rule("erfc")
def _erfc(t, eqn, inputs, **_):
  one = t.graph.const(1, output_aval(eqn)[1])
  return _unary(t, eqn, inputs, lambda x: t.graph.node("Sub", [one, t.graph.node("Erf", [x])]))


@rule("log1p")
def _log1p(t, eqn, inputs, **_):
  """log(1 + x): ONNX has no Log1p; the rounding of 1 + x costs at most ~1 ulp of 1 in
  absolute terms (softplus / Mish use it on exp(-|x|) in (0, 1])."""
  one = t.graph.const(1, output_aval(eqn)[1])
  return _unary(t, eqn, inputs, lambda x: t.graph.node("Log", [t.graph.node("Add", [x, one])]))


@rule("square")
def _square(t, eqn, inputs, **_):
  return _unary(t, eqn, inputs, lambda x: t.graph.node("Mul", [x, x]))


@rule("integer_pow")
def _integer_pow(t, eqn, inputs, y, **_):
  dtype = output_aval(eqn)[1]
  return _unary(t, eqn, inputs, lambda x: t.graph.node("Pow", [x, t.graph.const(y, dtype)]))


@rule("rem")
def _rem(t, eqn, inputs, **_):  # C-style remainder (sign of the dividend).
  return _elementwise_result(t, eqn, inputs, t.graph.node("Mod", [t.name(v) for v in inputs],
                                                          fmod=1))


@rule("round")
def _round(t, eqn, inputs, rounding_method, **_):
  if int(rounding_method) == 1:  # To nearest even: ONNX Round.
    return _unary(t, eqn, inputs, lambda x: t.graph.node("Round", [x]))
  dtype = output_aval(eqn)[1]  # Away from zero: sign(x) * floor(|x| + 0.5).
  g = t.graph
  return _unary(t, eqn, inputs, lambda x: g.node("Mul", [g.node("Sign", [x]), g.node(
      "Floor", [g.node("Add", [g.node("Abs", [x]), g.const(0.5, dtype)])])]))


@rule("select_n")
def _select_n(t, eqn, inputs, **_):
  if len(inputs) != 3 or inputs[0].dtype != np.bool_:
    raise UnsupportedError("ONNX export: select_n with other than a boolean and two cases.")
  pred, case0, case1 = inputs
  fused = _leaky_relu(t.graph, t.name(pred), t.name(case0), t.name(case1))
  return _elementwise_result(t, eqn, inputs, fused or t.graph.node(
      "Where", [t.name(pred), t.name(case1), t.name(case0)]))


def _leaky_relu(g, pred: str, negative: str, x: str):
  """`where(x >= 0, x, slope * x)` (Flax's leaky_relu, SRVGG's PReLU) as ONNX LeakyRelu (scalar
  slope) or PRelu (per-channel), which ONNX Runtime fuses into the preceding Conv; None when
  the operands are not that pattern."""
  compare, scaled = g.producers.get(pred), g.producers.get(negative)
  if (compare is None or scaled is None or compare.op_type != "GreaterOrEqual"
      or scaled.op_type != "Mul" or compare.input[0] != x or x not in scaled.input):
    return None
  zero = g.const_values.get(compare.input[1])
  slope = g.const_values.get(scaled.input[1] if scaled.input[0] == x else scaled.input[0])
  if zero is None or slope is None or np.any(zero != 0) or slope.dtype.kind != "f":
    return None
  if slope.size == 1:
    return g.node("LeakyRelu", [x], alpha=float(slope.reshape(-1)[0]))
  return g.node("PRelu", [x, g.const(slope)])


@rule("clamp")
def _clamp(t, eqn, inputs, **_):
  low, x, high = (t.name(v) for v in inputs)
  return _elementwise_result(t, eqn, inputs, t.graph.node(
      "Min", [t.graph.node("Max", [x, low]), high]))


@rule("convert_element_type")
def _convert(t, eqn, inputs, new_dtype, **_):
  x = inputs[0]
  result = t.graph.node("Cast", [t.name(x)],
                        to=helper.np_dtype_to_tensor_dtype(np.dtype(new_dtype)))
  return _elementwise_result(t, eqn, inputs, result)


@rule("copy", "copy_p", "reduce_precision", "optimization_barrier", "stop_gradient")
def _identity(t, eqn, inputs, **_):
  return [dataclasses.replace(v, shape=tuple(a.aval.shape)) if isinstance(v, Tensor) else v
          for v, a in zip(inputs, eqn.outvars)]


@rule("broadcast_in_dim")
def _broadcast_in_dim(t, eqn, inputs, shape, broadcast_dimensions, **_):
  x = inputs[0]
  in_shape = tuple(x.shape)
  missing = [i for i in range(len(shape)) if i not in broadcast_dimensions]
  name = t.name(x)
  if missing:
    name = t.graph.node("Unsqueeze", [name, t.graph.const(np.array(missing, np.int64))])
  same = all(in_shape[j] is shape[i] or (is_static((in_shape[j], shape[i]))
                                         and in_shape[j] == shape[i])
             for j, i in enumerate(broadcast_dimensions))
  partial = bool(missing) or not same or (isinstance(x, Tensor) and x.partial)
  return Tensor(name, tuple(shape), np.dtype(eqn.outvars[0].aval.dtype), partial=partial)


@rule("reshape")
def _reshape(t, eqn, inputs, new_sizes, dimensions=None, **_):
  if dimensions is not None:
    raise UnsupportedError("ONNX export: reshape with `dimensions`.")
  return t.graph.node("Reshape", [t.full(inputs[0]), t.shape_tensor(new_sizes)])


@rule("squeeze")
def _squeeze(t, eqn, inputs, dimensions, **_):
  return t.graph.node("Squeeze", [t.full(inputs[0]),
                                  t.graph.const(np.array(dimensions, np.int64))])


@rule("transpose")
def _transpose(t, eqn, inputs, permutation, **_):
  x = inputs[0]
  name = t.graph.node("Transpose", [t.name(x)], perm=list(permutation))
  shape, dtype = output_aval(eqn)
  return Tensor(name, shape, dtype, partial=isinstance(x, Tensor) and x.partial)


@rule("concatenate")
def _concatenate(t, eqn, inputs, dimension, **_):
  return t.graph.node("Concat", [t.full(v) for v in inputs], axis=int(dimension))


@rule("split")
def _split(t, eqn, inputs, sizes, axis, **_):
  return list(t.graph.node("Split", [t.full(inputs[0]), t.graph.ints([t.dim(s) for s in sizes])],
                           num_outputs=len(sizes), axis=int(axis)))


def slice_node(t, x: str, starts, ends, axes, steps) -> str:
  g = t.graph
  return g.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints(list(axes)), g.ints(steps)])


@rule("slice")
def _slice_rule(t, eqn, inputs, start_indices, limit_indices, strides=None, **_):
  rank = len(start_indices)
  steps = list(strides) if strides is not None else [1] * rank
  return slice_node(t, t.full(inputs[0]), [t.dim(s) for s in start_indices],
                [t.dim(e) for e in limit_indices], range(rank), steps)


@rule("rev")
def _rev(t, eqn, inputs, dimensions, **_):
  n = len(dimensions)
  return slice_node(t, t.full(inputs[0]), [-1] * n, [_INT64_MIN] * n, dimensions, [-1] * n)


@rule("pad")
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
    name = slice_node(t, name, [-lo if negative(lo) else 0 for lo in lows], ends, range(rank),
                  [1] * rank)
    lows = [0 if negative(d) else d for d in lows]
    highs = [0 if negative(d) else d for d in highs]
  if all(d == 0 for d in lows + highs if isinstance(d, int)) and is_static(lows + highs):
    return t.graph.node("Identity", [name])
  return t.graph.node("Pad", [name, t.graph.ints(lows + highs), t.name(value)], mode="constant")


@rule("iota")
def _iota(t, eqn, inputs, dtype, shape, dimension, **_):
  g = t.graph
  size = t.dim(shape[dimension])
  limit = size.name if isinstance(size, Dim) else g.const(np.array([size], np.int64))
  limit = g.node("Squeeze", [limit, g.const(np.array([0], np.int64))])
  values = g.node("Range", [g.const(np.int64(0)), limit, g.const(np.int64(1))])
  values = g.node("Cast", [values], to=helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
  axes = [i for i in range(len(shape)) if i != dimension]
  if axes:
    values = g.node("Unsqueeze", [values, g.const(np.array(axes, np.int64))])
  return Tensor(values, tuple(shape), np.dtype(dtype), partial=len(shape) > 1)


@rule("dim_as_value")
def _dim_as_value(t, eqn, inputs, dim, **_):
  g = t.graph
  value = t.dim(dim)
  name = value.name if isinstance(value, Dim) else g.const(np.array([value], np.int64))
  scalar = g.node("Squeeze", [name, g.const(np.array([0], np.int64))])
  return g.node("Cast", [scalar], to=helper.np_dtype_to_tensor_dtype(output_aval(eqn)[1]))


def _reduce(op: str) -> Rule:
  def translate(t, eqn, inputs, axes, **_):
    return t.graph.node(op, [t.full(inputs[0]), t.graph.const(np.array(axes, np.int64))],
                        keepdims=0)
  return translate


for _jax_name, _onnx_op in (("reduce_sum", "ReduceSum"), ("reduce_max", "ReduceMax"),
                            ("reduce_min", "ReduceMin"), ("reduce_prod", "ReduceProd")):
  RULES[_jax_name] = _reduce(_onnx_op)


@rule("reduce_window_max")
def _reduce_window_max(t, eqn, inputs, window_dimensions, window_strides, padding,
                       base_dilation, window_dilation, **_):
  """MaxPool over the windowed axes (Flax `max_pool`: NHWC), two window-1 axes as N, C, between
  two Transposes. Padding (JAX's -inf) must leave a real value in every window."""
  rank = len(window_dimensions)
  plain = [a for a in range(rank) if window_dimensions[a] == 1 and window_strides[a] == 1
           and tuple(padding[a]) == (0, 0)][:2]
  pooled = [a for a in range(rank) if a not in plain]
  effective = [(window_dimensions[a] - 1) * window_dilation[a] + 1 for a in pooled]
  if (len(plain) != 2 or not pooled or any(d != 1 for d in base_dilation)
      or any(lo < 0 or hi < 0 or max(lo, hi) >= e
             for (lo, hi), e in zip((padding[a] for a in pooled), effective))):
    raise UnsupportedError("ONNX export: reduce_window_max other than a max pool over all but "
                           "two axes, with padding less than the window.")
  g = t.graph
  perm = plain + pooled
  y = g.node("MaxPool", [g.node("Transpose", [t.full(inputs[0])], perm=perm)],
             kernel_shape=[int(window_dimensions[a]) for a in pooled],
             strides=[int(window_strides[a]) for a in pooled],
             pads=[int(padding[a][0]) for a in pooled] + [int(padding[a][1]) for a in pooled],
             dilations=[int(window_dilation[a]) for a in pooled])
  return g.node("Transpose", [y], perm=[int(i) for i in np.argsort(perm)])


@rule("conv_general_dilated")
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


@rule("dot_general")
def _dot_general(t, eqn, inputs, dimension_numbers, **_):
  """MatMul when there are no batch dimensions and the right side is a matrix contracted on one
  axis (dense layers, resize matrices; ONNX Runtime's Einsum is slower there); else Einsum."""
  (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
  lhs, rhs = inputs
  g = t.graph
  if not lhs_batch and len(rhs.shape) == 2 and len(lhs_contract) == 1:
    (i,), (j,) = lhs_contract, rhs_contract
    perm = [d for d in range(len(lhs.shape)) if d != i] + [i]
    lhs_name = t.full(lhs)
    if perm != list(range(len(lhs.shape))):
      lhs_name = g.node("Transpose", [lhs_name], perm=perm)
    rhs_name = t.full(rhs) if j == 0 else g.node("Transpose", [t.full(rhs)], perm=[1, 0])
    result = g.node("MatMul", [lhs_name, rhs_name])
  else:
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
    result = g.node("Einsum", [t.full(lhs), t.full(rhs)], equation=equation)
  dtype = output_aval(eqn)[1]
  if np.dtype(lhs.dtype) != dtype:  # preferred_element_type.
    result = g.node("Cast", [result], to=helper.np_dtype_to_tensor_dtype(dtype))
  return result


# The gather rules live in their own module; importing it registers them in RULES.
from jaxsr.export import onnx_gather_rules  # noqa: E402,F401  pylint: disable=wrong-import-position,cyclic-import
