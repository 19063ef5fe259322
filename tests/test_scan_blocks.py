"""Repeated blocks compiled once (`trunk.apply_blocks`, issue #19): the scanned trunks of
RRDBNet, MSRResNet, EDSR and SwinIR have the unrolled trunks' parameters, values, gradients and
(SwinIR) stochastic-depth drops; `remat` changes no value; exporters trace them unrolled; and
the train step lowered for a GPU holds one copy of a block, whatever their number."""

import importlib.util
import pathlib
import re

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import config_base
from jaxsr import models
from jaxsr.ops import conv

from tests import utils

REPO = pathlib.Path(__file__).resolve().parents[1]

# Small models with enough blocks to scan (>= 2 steps), a SwinIR with an odd depth (a pair
# left over) and a stage too short to scan.
SMALL = {
    "rrdbnet": dict(num_feat=8, num_block=3, num_grow_ch=4),
    "msrresnet": dict(num_feat=8, num_block=3),
    "edsr": dict(num_feat=8, num_block=3),
    "swinir": dict(embed_dim=12, depths=(5, 2), num_heads=(2, 3), window_size=4, num_feat=8,
                   drop_path_rate=0.5),
}
X = jnp.asarray(np.random.default_rng(0).random((4, 8, 8, 3), np.float32))


def _key(seed=0):
  return jax.random.key(seed, impl="rbg")  # Fast to compile on CPU (see test_models).


def _apply(model, train):
  if train:
    return jax.jit(lambda v, x: model.apply(v, x, train=True, rngs={"dropout": _key(3)}))
  return jax.jit(model.apply)


def _grad(model, train):
  def loss(variables):
    rngs = {"dropout": _key(3)} if train else {}
    return jnp.mean(model.apply(variables, X, train=train, rngs=rngs)**2)
  return jax.jit(jax.grad(loss))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_scanned_blocks_have_the_unrolled_params_values_and_gradients(name):
  unrolled = models.create_model(name, 4, scan_blocks=False, **SMALL[name])
  variables = unrolled.init(_key(), X)
  ops = utils.network_ops(variables)
  train_modes = (False, True) if name == "swinir" else (False,)
  for options in (dict(scan_blocks=True), dict(scan_blocks=True, remat=True),
                  dict(scan_blocks=False, remat=True)):
    model = models.create_model(name, 4, **options, **SMALL[name])
    # Same init: the per-block trees (BasicSR names) and values.
    utils.assert_trees_equal(model.init(_key(), X), variables)
    for train in train_modes:
      utils.assert_close(_apply(model, train)(variables, X),
                         _apply(unrolled, train)(variables, X), ops=ops,
                         err_msg=f"{options} train={train}")
      want = _grad(unrolled, train)(variables)
      got = _grad(model, train)(variables)
      assert jax.tree.structure(got) == jax.tree.structure(want)
      for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        utils.assert_close(g, w, ops=ops, magnitude=float(np.max(np.abs(w))) or 1.0,
                           err_msg=f"{options} train={train}")


def test_scanned_swinir_drops_the_samples_the_unrolled_one_drops():
  kwargs = dict(SMALL["swinir"], drop_path_rate=0.9)
  unrolled = models.create_model("swinir", 2, scan_blocks=False, **kwargs)
  scanned = models.create_model("swinir", 2, **kwargs)
  variables = unrolled.init(_key(), X)
  evaluated = _apply(unrolled, False)(variables, X)
  dropped = _apply(unrolled, True)(variables, X)
  assert not np.allclose(dropped, evaluated)  # Drops happen; the scan makes the same ones.
  utils.assert_close(_apply(scanned, True)(variables, X), dropped,
                     ops=utils.network_ops(variables))
  with pytest.raises(Exception, match="dropout"):
    scanned.apply(variables, X, train=True)


def test_bfloat16_scanned_trunk_keeps_its_dtype():
  unrolled = models.create_model("rrdbnet", 4, jnp.bfloat16, scan_blocks=False,
                                 **SMALL["rrdbnet"])
  scanned = models.create_model("rrdbnet", 4, jnp.bfloat16, **SMALL["rrdbnet"])
  variables = unrolled.init(_key(), X)
  assert "scan" in str(jax.make_jaxpr(scanned.apply)(variables, X))
  utils.assert_close(scanned.apply(variables, X), unrolled.apply(variables, X),
                     dtype=jnp.bfloat16, ops=utils.network_ops(variables, jnp.bfloat16))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_exporters_trace_the_blocks_unrolled(name):
  model = models.create_model(name, 4, remat=True, **SMALL[name])
  variables = jax.eval_shape(model.init, _key(), X)
  assert "scan" in str(jax.make_jaxpr(model.apply)(variables, X))
  with conv.portable():
    jaxpr = str(jax.make_jaxpr(model.apply)(variables, X))
  assert "scan" not in jaxpr and "checkpoint" not in jaxpr and "remat" not in jaxpr


def _compile_size():
  spec = importlib.util.spec_from_file_location("compile_size", REPO / "bench" / "compile_size.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


# The shipped trunks' train steps lowered for CUDA hold one block's (SwinIR: one pair's per
# RSTB) convolutions and dots, not one per block. Measured with bench/compile_size.py
# (BENCHMARKS.md), unrolled -> scanned: RRDBNet 64x23 1052 -> 62 convolutions, 45.9k -> 36.1k
# ops; MSRResNet 110 -> 20, 5.2k -> 4.5k; EDSR 107 -> 17, 4.9k -> 4.2k; SwinIR-M 35
# convolutions, 648 -> 216 dots, 39.9k -> 34.0k ops. Bounds a little above the scanned counts,
# far below the unrolled ones. `while`: the scans' forward and backward loops and nothing else
# (the CPU filter gradient's loop is not in a GPU program).
@pytest.mark.parametrize("config_name,max_convs,max_dots,max_ops,whiles", [
    ("rrdbnet_psnr_x4", 70, None, 38_000, 2),
    ("msrresnet_x4", 25, None, 4_800, 2),
    ("edsr_x2", 25, None, 4_500, 2),
    ("swinir_classical_x4", 40, 230, 36_000, 12),
])
def test_gpu_train_step_program_holds_one_block(config_name, max_convs, max_dots, max_ops,
                                                whiles):
  compile_size = _compile_size()
  config = config_base.config_from_file(str(REPO / "configs" / f"{config_name}.py"))
  config.batch_size, config.data.gt_size = 2, 16 * config.scale
  step, args = compile_size.step_and_args(config)
  text = step.trace(*args).lower(lowering_platforms=("cuda",)).as_text()
  counts = compile_size.stablehlo_counts(text)
  assert counts["convolution"] <= max_convs, counts
  if max_dots is not None:
    assert counts["dot_general"] <= max_dots, counts
  assert counts["ops"] <= max_ops, counts
  assert counts["while"] == whiles, counts
  assert counts["custom_call"] == 0, counts


def test_init_generates_one_blocks_random_numbers_per_kind_of_block():
  """Deep trunks initialise through one vmapped init per kind of block (`trunk._init_blocks`):
  the init program's random-number generation does not grow with the block count (RCAN's 200
  blocks compiled for minutes), and every block still gets its own values from the same
  initialisers."""
  def init_text(blocks):
    model = models.create_model("rcan", 2, n_resgroups=2, n_resblocks=blocks, n_feats=8,
                                reduction=4)
    return jax.jit(lambda k: model.init(k, X)).lower(jax.random.key(0)).as_text()
  # Calls of the random-number functions (each initialiser's, each key's fold-in).
  calls = [len(re.findall(r"call @_(threefry|uniform|normal|truncated)", init_text(n)))
           for n in (2, 6)]
  assert calls[0] == calls[1] > 0, calls

  model = models.create_model("rcan", 2, n_resgroups=2, n_resblocks=6, n_feats=8, reduction=4)
  params = jax.jit(model.init)(jax.random.key(0), X)["params"]
  kernels = [np.asarray(params[f"body_{g}"][f"body_{b}"]["body_0"]["kernel"])
             for g in range(2) for b in range(6)]
  assert len({k.tobytes() for k in kernels}) == len(kernels)  # No two blocks alike.
  stds = np.array([k.std() for k in kernels])
  np.testing.assert_allclose(stds, stds.mean(), rtol=0.35)  # One initialiser for all.


def test_compile_size_counts_the_init_programs_random_calls():
  """bench/compile_size.py --init: RCAN's whole train-state init, lowered for CUDA, holds the
  random numbers of one RCAB and one group, whatever the counts (the shipped 10 x 20 too)."""
  compile_size = _compile_size()
  counts = []
  for groups, blocks in ((2, 2), (10, 20)):
    config = config_base.config_from_file(str(REPO / "configs" / "rcan_x4.py"))
    config.model.n_resgroups, config.model.n_resblocks, config.model.n_feats = groups, blocks, 8
    config.model.reduction = 4
    counts.append(compile_size.measure_init(config, "cuda", cpu_compile=False))
  assert counts[0]["init_rng_calls"] == counts[1]["init_rng_calls"] > 0, counts


def _stacked_residuals(jaxpr) -> list[int]:
  """Per `scan` in `jaxpr` (nested ones included), in order: its stacked outputs (ys)."""
  counts = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "scan":
      counts.append(len(eqn.outvars) - eqn.params["num_carry"])
    for value in eqn.params.values():
      for sub in value if isinstance(value, (tuple, list)) else (value,):
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          sub = sub.jaxpr
        if isinstance(sub, jax.extend.core.Jaxpr):
          counts += _stacked_residuals(sub)
  return counts


def test_shipped_omnisr_remats_its_scan_which_then_stacks_only_the_groups_inputs():
  """OmniSR's config recomputes each scanned OSAG in the backward pass (BENCHMARKS.md: its
  CPU step 2.3x faster): the forward scan then stacks only the OSAG inputs (and their
  parameters), not every intermediate of the group."""
  config = config_base.config_from_file(str(REPO / "configs" / "omnisr_x4.py"))
  assert config.model.remat and config.model.get("scan_blocks", True)
  small = dict(num_feat=8, res_num=3, window_size=4)
  x = jnp.zeros((1, 16, 16, 3))

  def forward_scan_residuals(**options):
    model = models.create_model("omnisr", 4, **small, **options)
    variables = model.init(_key(), x)
    grad = jax.grad(lambda v: jnp.mean(model.apply(v, x)))
    return _stacked_residuals(jax.make_jaxpr(grad)(variables).jaxpr)[0]

  with_remat, without = forward_scan_residuals(remat=True), forward_scan_residuals(remat=False)
  assert with_remat <= 2 < 10 < without, (with_remat, without)
