"""`gather` rules of `jaxpr_to_onnx` (registered in `onnx_rules.RULES`): static slices,
`jnp.take` along one axis (ONNX Gather) and batched point gathers such as
`jnp.take_along_axis` (ONNX GatherND with `batch_dims`), with JAX's out-of-range modes."""

import numpy as np
from onnx import helper

from jaxsr.export.onnx_graph import Dim, UnsupportedError, Value
from jaxsr.export.onnx_rules import output_aval, rule, slice_node


@rule("gather")
def _gather(t, eqn, inputs, dimension_numbers, slice_sizes, mode, fill_value=None, **_):
  """A static slice (jnp indexing with constant indices: one index vector, no batching dims),
  `jnp.take(x, indices, axis)` (`_take`) or a batched point gather such as
  `jnp.take_along_axis` (`_gather_nd`); other gathers are unsupported."""
  operand, indices = inputs
  dn = dimension_numbers
  if (isinstance(indices, np.ndarray) and indices.size == len(dn.start_index_map)
      and not dn.operand_batching_dims and len(dn.offset_dims) + len(dn.collapsed_slice_dims)
      == len(operand.shape)):
    index = dict(zip(dn.start_index_map, indices.reshape(-1).tolist()))
    rank = len(operand.shape)
    starts = [int(index.get(a, 0)) for a in range(rank)]
    ends = [t.dim(slice_sizes[a]) + starts[a] for a in range(rank)]
    name = slice_node(t, t.full(operand), starts, ends, range(rank), [1] * rank)
    if dn.collapsed_slice_dims:
      name = t.graph.node("Squeeze", [name, t.graph.const(np.array(dn.collapsed_slice_dims,
                                                                    np.int64))])
    return name
  axis = _take_axis(operand.shape, indices.shape, dn, slice_sizes)
  if axis is not None:
    return _take(t, eqn, operand, indices, axis, mode, fill_value)
  if _is_batched_point_gather(operand.shape, indices.shape, dn, slice_sizes):
    return _gather_nd(t, eqn, operand, indices, len(dn.operand_batching_dims), mode, fill_value)
  raise UnsupportedError("ONNX export: gather other than a slice at constant indices, a take "
                         "along one axis or a batched point gather (take_along_axis).")


def _take_axis(shape, index_shape, dn, slice_sizes):
  """The axis of a gather that is `jnp.take(x, indices, axis)`: indices `[..., 1]` into one
  axis, whole slices of the others, the indices' axes in the operand's axis place; else
  None."""
  if (len(dn.start_index_map) != 1 or dn.operand_batching_dims or not index_shape
      or index_shape[-1] != 1 or tuple(dn.collapsed_slice_dims) != tuple(dn.start_index_map)):
    return None
  axis, rank, k = dn.start_index_map[0], len(shape), len(index_shape) - 1
  whole = all((slice_sizes[a] == 1) if a == axis else (slice_sizes[a] == shape[a])
              for a in range(rank))
  offsets = list(range(axis)) + list(range(axis + k, rank + k - 1))
  return axis if whole and list(dn.offset_dims) == offsets else None


def _is_batched_point_gather(shape, index_shape, dn, slice_sizes) -> bool:
  """Whether a gather is ONNX GatherND with `batch_dims` = b: the leading b axes of operand and
  indices are batching axes, the indices' last axis (m components) picks operand axes b ..
  b + m - 1 (collapsed), and whole slices of the remaining axes trail the output
  (`jnp.take_along_axis(x, i[..., None], axis=b)` over `[B, N, C]` is one)."""
  b, m = len(dn.operand_batching_dims), len(dn.start_index_map)
  rank, k = len(shape), len(index_shape) - 1
  if (not b or not index_shape or index_shape[-1] != m or m == 0
      or tuple(dn.operand_batching_dims) != tuple(range(b))
      or tuple(dn.start_indices_batching_dims) != tuple(range(b))
      or tuple(dn.start_index_map) != tuple(range(b, b + m))
      or tuple(dn.collapsed_slice_dims) != tuple(range(b, b + m))):
    return False
  whole = all(slice_sizes[a] == (1 if a < b + m else shape[a]) for a in range(rank))
  return whole and tuple(dn.offset_dims) == tuple(range(k, k + rank - b - m))


def _gather_nd(t, eqn, operand: Value, indices: Value, batch: int, mode, fill_value) -> str:
  """ONNX GatherND with `batch_dims` = `batch`, indices clamped into range; FILL_OR_DROP puts
  `fill_value` where any component of an index is out of range (as `_take`)."""
  g = t.graph
  m = indices.shape[-1]
  size = t.shape_tensor(operand.shape[batch:batch + m])  # `[m]`, against the index's last axis
  index = g.node("Cast", [t.full(indices)], to=helper.np_dtype_to_tensor_dtype(np.dtype(np.int64)))
  zero, one = g.const(np.int64(0)), g.const(np.int64(1))
  clamped = g.node("Max", [g.node("Min", [index, g.node("Sub", [size, one])]), zero])
  gathered = g.node("GatherND", [t.full(operand), clamped], batch_dims=int(batch))
  if getattr(mode, "name", str(mode)) != "FILL_OR_DROP":
    return gathered
  inside = g.node("And", [g.node("GreaterOrEqual", [index, zero]), g.node("Less", [index, size])])
  inside = g.node("Cast", [inside], to=helper.np_dtype_to_tensor_dtype(np.dtype(np.int64)))
  inside = g.node("ReduceMin", [inside, g.const(np.array([-1], np.int64))], keepdims=0)
  inside = g.node("Cast", [inside], to=helper.np_dtype_to_tensor_dtype(np.dtype(np.bool_)))
  trailing = len(operand.shape) - batch - m  # the slices' axes after the index axes
  if trailing:
    k = len(indices.shape) - 1
    inside = g.node("Unsqueeze", [inside, g.const(np.arange(k, k + trailing, dtype=np.int64))])
  return g.node("Where", [inside, gathered, g.const(_fill_value(eqn, fill_value))])


def _fill_value(eqn, fill_value) -> np.ndarray:
  """JAX's FILL_OR_DROP value: `fill_value`, else NaN / True / the lowest or highest integer."""
  dtype = output_aval(eqn)[1]
  if fill_value is None:
    fill_value = (np.nan if dtype.kind in "fc" else True if dtype == np.bool_
                  else np.iinfo(dtype).min if dtype.kind == "i" else np.iinfo(dtype).max)
  return np.asarray(fill_value, dtype)


def _take(t, eqn, operand: Value, indices: Value, axis: int, mode, fill_value) -> str:
  """ONNX Gather along `axis`, indices clamped into range (modes CLIP and PROMISE_IN_BOUNDS);
  FILL_OR_DROP puts `fill_value` (JAX's default: NaN, the lowest integer) where an index is
  out of range."""
  g = t.graph
  rank, k = len(operand.shape), len(indices.shape) - 1
  size = t.dim(operand.shape[axis])
  size = size.name if isinstance(size, Dim) else g.const(np.array([size], np.int64))
  index = g.node("Squeeze", [t.full(indices), g.const(np.array([-1], np.int64))])
  index = g.node("Cast", [index], to=helper.np_dtype_to_tensor_dtype(np.dtype(np.int64)))
  zero, one = g.const(np.int64(0)), g.const(np.int64(1))
  clamped = g.node("Max", [g.node("Min", [index, g.node("Sub", [size, one])]), zero])
  gathered = g.node("Gather", [t.full(operand), clamped], axis=int(axis))
  if getattr(mode, "name", str(mode)) != "FILL_OR_DROP":
    return gathered
  inside = g.node("And", [g.node("GreaterOrEqual", [index, zero]),
                          g.node("Less", [index, size])])
  broadcast = list(range(axis)) + list(range(axis + k, rank + k - 1))
  if broadcast:
    inside = g.node("Unsqueeze", [inside, g.const(np.array(broadcast, np.int64))])
  return g.node("Where", [inside, gathered, g.const(_fill_value(eqn, fill_value))])
