"""Analytic FLOPs of a JAX function: its convolutions and matrix products counted from their
shapes in the traced program, for model FLOP utilization (MFU).

XLA's `cost_analysis()` cannot be used for MFU: on GPU it does not count cuDNN convolutions (a
MSRResNet train step reported 0.48 GFLOP), and everywhere it counts a loop body once (the
scanned RRDB trunk, the CPU filter-gradient loop). Here the jaxpr is walked instead:

- `conv_general_dilated`: 2 · (output elements) · (kernel window) · (kernel input features);
  this holds for grouped convolutions and for the filter-gradient convolutions JAX derives
  (`batch_group_count`), since the reduction per output element is always the kernel's
  window times its input features;
- `dot_general`: 2 · (output elements) · (contracted size);
- only work the outputs depend on counts (dead code, which XLA removes, does not);
- `scan` bodies count `length` times; `cond` (e.g. `lax.platform_dependent`) counts its most
  expensive branch; a `while` body counts once and is reported in `while_loops` (its trip count
  is not in the program); calls (`pjit`, `remat`, custom JVP / VJP) count their body.

Element-wise work (activations, normalization, optimizer updates) is not counted: it is
memory-bound and, as in the MFU convention (PaLM, appendix B), not "model FLOPs". Since the
function is traced, the count is exactly what the traced program computes: a train step
includes its backward pass and any recomputation (`remat`).
"""

import dataclasses
import math
from typing import Any, Callable

import jax
from jax.extend import core as jax_core

# H200 SXM dense peaks (NVIDIA datasheet), TFLOP/s.
PEAK_TFLOPS = {"NVIDIA H200": {"bfloat16": 989.0, "tf32": 494.0, "float32": 67.0},
               "NVIDIA H100 80GB HBM3": {"bfloat16": 989.0, "tf32": 494.0, "float32": 67.0}}


@dataclasses.dataclass
class FlopCount:
  """FLOPs by kind; `while_loops` counts `while` bodies counted once (trip count unknown)."""
  conv: float = 0.0
  matmul: float = 0.0
  while_loops: int = 0

  @property
  def total(self) -> float:
    return self.conv + self.matmul

  def add(self, other: "FlopCount", times: float = 1.0) -> None:
    self.conv += times * other.conv
    self.matmul += times * other.matmul
    self.while_loops += other.while_loops

  def as_dict(self) -> dict:
    return {"gflop": round(self.total / 1e9, 3), "conv_gflop": round(self.conv / 1e9, 3),
            "matmul_gflop": round(self.matmul / 1e9, 3), "while_loops": self.while_loops}


def _conv_flops(eqn) -> float:
  rhs = eqn.invars[1].aval.shape
  out = eqn.outvars[0].aval.shape
  rhs_spec = eqn.params["dimension_numbers"].rhs_spec  # (out feature, in feature, *spatial)
  window = math.prod(rhs[d] for d in rhs_spec[2:])
  return 2.0 * math.prod(out) * window * rhs[rhs_spec[1]]


def _dot_flops(eqn) -> float:
  (lhs_contract, _), _ = eqn.params["dimension_numbers"]
  lhs = eqn.invars[0].aval.shape
  return 2.0 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in lhs_contract)


def _sub_jaxprs(value) -> list:
  """The jaxprs held by one equation parameter (a jaxpr, a closed jaxpr or a tuple of them)."""
  if isinstance(value, jax_core.ClosedJaxpr):
    return [value.jaxpr]
  if isinstance(value, jax_core.Jaxpr):
    return [value]
  if isinstance(value, (tuple, list)):
    return [j for v in value for j in _sub_jaxprs(v)]
  return []


def _live_eqns(jaxpr: jax_core.Jaxpr) -> list:
  """The equations that the outputs depend on (or that have effects), in order: what XLA
  keeps. Traced gradients hold dead work, e.g. the primal output `jax.vjp` computes and a
  backward pass discards."""
  live = {v for v in jaxpr.outvars if isinstance(v, jax_core.Var)}
  kept = []
  for eqn in reversed(jaxpr.eqns):
    if eqn.effects or any(v in live for v in eqn.outvars):
      kept.append(eqn)
      live.update(v for v in eqn.invars if isinstance(v, jax_core.Var))
  return kept[::-1]


def count_jaxpr(jaxpr: jax_core.Jaxpr) -> FlopCount:
  """FLOPs of one jaxpr's live equations (see the module docstring); the outputs of inner
  jaxprs (scan and cond bodies, calls) all count as used."""
  count = FlopCount()
  for eqn in _live_eqns(jaxpr):
    name = eqn.primitive.name
    if name == "conv_general_dilated":
      count.conv += _conv_flops(eqn)
    elif name == "dot_general":
      count.matmul += _dot_flops(eqn)
    elif name == "scan":
      count.add(count_jaxpr(eqn.params["jaxpr"].jaxpr), times=eqn.params["length"])
    elif name == "cond":
      branches = [count_jaxpr(b.jaxpr) for b in eqn.params["branches"]]
      count.add(max(branches, key=lambda c: c.total))
    elif name == "while":
      body = count_jaxpr(eqn.params["body_jaxpr"].jaxpr)
      count.add(body)
      count.while_loops += 1
    else:
      for value in eqn.params.values():
        for sub in _sub_jaxprs(value):
          count.add(count_jaxpr(sub))
  return count


def count_flops(fn: Callable[..., Any], *args, **kwargs) -> FlopCount:
  """FLOPs of one call `fn(*args, **kwargs)` (arrays or `jax.ShapeDtypeStruct`s; nothing is
  run). `fn` may be jitted."""
  return count_jaxpr(jax.make_jaxpr(fn)(*args, **kwargs).jaxpr)


def peak_tflops(device_kind: str, dtype: str) -> float | None:
  """Dense datasheet peak TFLOP/s of `device_kind` for `dtype` ('bfloat16', 'tf32',
  'float32'), or None when unknown."""
  return PEAK_TFLOPS.get(device_kind, {}).get(dtype)
