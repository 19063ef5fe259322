"""The repeated blocks of a trunk (RRDBNet's RRDBs, EDSR's residual blocks, Swin layers, ...),
initialised and compiled once per kind of block: `apply_blocks`."""

import dataclasses
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import sharding
from jaxsr.ops import conv as conv_ops


def _tree_stack(trees: Sequence[Any]) -> Any:
  """Trees of equal structure -> one tree of their leaves stacked along a new axis 0."""
  return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def _functional(block: nn.Module, kwargs: dict[str, Any]) -> Callable[..., Any]:
  """`(params, x, args) -> block(x, **args, **kwargs)` with `block`'s fields, applied to
  `params`: an unbound copy, usable inside a JAX transform (`lax.scan`, `jax.checkpoint`)."""
  template = block.clone(parent=None, name=None)
  return lambda params, x, args: template.apply({"params": params}, x, **args, **kwargs)


def _block_fields(block: nn.Module) -> dict[str, Any]:
  """A block's dataclass fields but its place (`parent`, `name`)."""
  return {f.name: getattr(block, f.name) for f in dataclasses.fields(block)
          if f.name not in ("parent", "name")}


def _same_fields(a: dict[str, Any], b: dict[str, Any]) -> bool:
  try:
    return bool(a == b)
  except ValueError:  # Array-valued fields: the truth value of a comparison is ambiguous.
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _init_blocks(parent: nn.Module, blocks: Sequence[nn.Module], x: Any,
                 block_args: Sequence[dict[str, Any]], kwargs: dict[str, Any]) -> None:
  """Creates `params[block.name]` of every block: blocks of one type with equal fields form a
  class, initialised by `jax.vmap` of one unbound copy's init over a key per block (and its
  `block_args`), all on `x`. The values differ from calling the blocks in turn (other keys),
  the distributions do not; the init program is one block's per class, so deep trunks (RCAN's
  200 blocks) initialise in seconds instead of compiling each block's random numbers."""
  classes: list[tuple[type, dict[str, Any], list[int]]] = []
  for i, block in enumerate(blocks):
    fields = _block_fields(block)
    for kind, other, members in classes:
      if kind is type(block) and _same_fields(fields, other):
        members.append(i)
        break
    else:
      classes.append((type(block), fields, [i]))
  for _, _, members in classes:
    template = blocks[members[0]].clone(parent=None, name=None)
    keys = jax.random.split(parent.make_rng("params"), len(members))
    args = _tree_stack([block_args[i] for i in members])
    init = lambda key, a: template.init(key, x, **a, **kwargs)["params"]
    stacked = jax.vmap(init)(keys, args)
    for j, i in enumerate(members):
      parent.put_variable("params", blocks[i].name, jax.tree.map(lambda v: v[j], stacked))


def apply_blocks(parent: nn.Module, blocks: Sequence[nn.Module], x: Any, *,
                 scan: bool = True, remat: bool = False, group: int = 1,
                 block_args: Optional[Sequence[dict[str, Any]]] = None,
                 kwargs: Optional[dict[str, Any]] = None) -> Any:
  """`blocks[n-1](... blocks[0](x, **block_args[0], **kwargs) ..., **block_args[n-1],
  **kwargs)`, the repeated blocks of a trunk, compiled once.

  `blocks` are submodules of `parent` created (named, not yet called) in its compact
  `__call__`; their parameters stay where they are (`params[block.name]`, the BasicSR names).
  At init, the blocks with the same fields are initialised by one vmapped init over their keys
  (`_init_blocks`: the init program holds one block's initialisers, not n copies of the random
  number generation), then run as below. With `scan`,
  each run of `group` consecutive blocks is one step of a `lax.scan` over the blocks'
  parameters stacked along a new axis (the blocks at the same position of a group must have
  the same fields and parameter shapes: e.g. group=2 for Swin blocks that alternate their
  shift): the program holds one group's computation, whatever the count; leftover blocks
  (n % group) and a first group that changes `x`'s dtype run unrolled. Values are those of
  the unrolled blocks: the same operations in the same order. Without `scan`, inside
  `conv_ops.portable()` (exporters), and on several CPU devices (`sharding.cpu_data_parallel`:
  the scan's backward pass would sum gradients across devices inside its loop), the blocks are
  unrolled.

  The blocks must have only `params` (no other variable collections) and draw no randomness
  of their own: pass per-block random keys in `block_args`.

  Args:
    parent: the module owning `blocks`.
    blocks: submodules `block(x, **args) -> x'` (same shape and, except maybe for the first
      group, dtype as x).
    x: the trunk's input.
    scan: scan over the blocks (see above).
    remat: recompute each block's (scan: each group's) activations in the backward pass
      (`jax.checkpoint`) instead of keeping them: less memory, one more forward pass.
    group: blocks per scan step.
    block_args: per block, keyword arguments (arrays; stacked for the scan).
    kwargs: keyword arguments of every block call (Python values, e.g. `train`).

  Returns:
    The last block's output.
  """
  count = len(blocks)
  block_args = [{}] * count if block_args is None else [dict(a) for a in block_args]
  kwargs = kwargs or {}
  if parent.is_initializing():
    _init_blocks(parent, blocks, x, block_args, kwargs)
  scan = scan and not sharding.cpu_data_parallel()  # Its gradient would sum inside the loop.
  if conv_ops.is_portable() or not (scan or remat):
    for block, args in zip(blocks, block_args):
      x = block(x, **args, **kwargs)
    return x
  params = parent.variables["params"]
  fns = [_functional(block, kwargs) for block in blocks[:group]]

  def run(group_params, x, group_args):
    for fn, p, args in zip(fns, group_params, group_args):
      x = fn(p, x, args)
    return x

  start, steps = 0, count // group
  if scan and steps >= 2:
    first = (tuple(params[b.name] for b in blocks[:group]), x, tuple(block_args[:group]))
    if jax.eval_shape(run, *first).dtype != x.dtype:  # The first group changes the dtype.
      x = (jax.checkpoint(run) if remat else run)(*first)
      start, steps = group, steps - 1
  if scan and steps >= 2:
    stop = start + steps * group
    stacked = tuple(
        (_tree_stack([params[b.name] for b in blocks[k:stop:group]]),
         _tree_stack(block_args[k:stop:group]))
        for k in range(start, start + group))

    def body(x, xs):
      return run(tuple(p for p, _ in xs), x, tuple(a for _, a in xs)), None

    if remat:
      body = jax.checkpoint(body, prevent_cse=False)
    x, _ = jax.lax.scan(body, x, stacked)
    start = stop
  for i in range(start, count):  # Unrolled: no scan, or blocks left over.
    fn = _functional(blocks[i], kwargs)
    x = (jax.checkpoint(fn) if remat else fn)(params[blocks[i].name], x, block_args[i])
  return x
