"""Export (`jaxsr.export`): the jaxpr -> ONNX translator rule by rule, every generator in ONNX,
BasicSR weights through ONNX against PyTorch's outputs, StableHLO / SavedModel / TFLite in their
runtimes, the command line and `jaxsr.upscale --model`.

Every comparison runs the export in its own runtime (onnxruntime, `jax.export.deserialize`,
`tf.saved_model.load`, the TFLite interpreter) on several sizes (odd, non-square, batch > 1)
of the one file: sizes are dynamic. Runtimes round differently (their own kernels, and XLA's
code differs by instruction set): outputs are compared within `utils.assert_close` tolerances
derived from the computation's dtype and accumulation lengths (`utils.network_ops`).
"""

import json
import os
import sys

import jax
import jax.extend  # noqa: F401  (jax.extend.core)
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxsr import convert
from jaxsr import inference
from jaxsr import models
from jaxsr.export import exporter
from jaxsr.export import jaxpr_to_onnx
from jaxsr.export import metadata as metadata_lib
from jaxsr.export import onnx_export
from jaxsr.export import onnx_graph
from jaxsr.export import program as program_lib
from jaxsr.export import runtimes
from jaxsr.interop import load as interop_load
from jaxsr.models import layers

from tests import utils

# Sizes in units of the model's input multiple: (batch, height, width).
SHAPES = ((2, 3, 5), (1, 7, 2))


def _onnx_run(model_proto):
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  session = ort.InferenceSession(model_proto.SerializeToString())
  return lambda x: session.run(None, {"input": x})[0]


def _assert_matches(run, apply, ops, multiple=1, shapes=SHAPES, dtype=np.float32, seed=0):
  """`run` (an export in its runtime) gives `apply` (JAX) on several sizes, within rounding of
  `ops` steps in `dtype` (relative to the largest output: outputs near 0 are sums of larger
  terms)."""
  rng = np.random.default_rng(seed)
  for batch, h, w in shapes:
    x = rng.random((batch, h * multiple, w * multiple, 3), np.float32)
    expected = np.asarray(apply(x))
    got = run(x)
    assert got.shape == expected.shape
    utils.assert_close(got, expected, dtype, ops, err_msg=f"size {(batch, h, w)}")


# --- The translator, rule by rule: functions of x [b, h, w, 3] with symbolic sizes.

def _conv(x, kernel, **kwargs):
  return lax.conv_general_dilated(x, kernel, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                  **kwargs)


_W = np.random.default_rng(1).normal(size=(3, 3, 3, 6)).astype(np.float32)
_G = np.random.default_rng(2).normal(size=(3, 3, 1, 6)).astype(np.float32)
_M = np.random.default_rng(3).normal(size=(3, 4)).astype(np.float32)
_T = np.random.default_rng(4).normal(size=(4, 4, 6, 3)).astype(np.float32)
FUNCTIONS = {
    "elementwise_and_lazy_broadcasts": lambda x: (
        jnp.maximum(x * 2.0 + jnp.arange(3.0), 0.5) - jnp.abs(x - 0.3) / (1.0 + x**2)
        + jnp.exp(-x) * jnp.sqrt(x + 1) + lax.rsqrt(x + 1) + jnp.tanh(x) + jax.nn.sigmoid(x)),
    "compare_select_round_rem": lambda x: (
        jnp.where((x > 0.5) & (x != 0.25), x, -x) + jnp.round(x * 7) + lax.round(
            x * 5 - 2, lax.RoundingMethod.AWAY_FROM_ZERO) + lax.rem(x * 7 - 3, 2.0)
        + jnp.clip(x, 0.2, 0.7) + (x >= 0.5).astype(jnp.float32)),
    "reshape_transpose_pixel_shuffle": lambda x: layers.pixel_unshuffle(
        layers.pixel_shuffle(jnp.concatenate([x] * 4, axis=-1), 2), 2),
    "pads_slices_reverse": lambda x: (
        jnp.pad(x, ((0, 0), (1, 1), (1, 0), (0, 0)), mode="reflect")[:, 2:, 1:]
        + jnp.flip(x, (1, 2))
        + lax.pad(x, 0.5, ((0, 0, 0), (-1, 2, 0), (1, -1, 0), (0, 0, 0)))[:, 1:]),
    "iota_and_sizes": lambda x: (x + jnp.arange(x.shape[1])[None, :, None, None] * 0.1
                                 + x.shape[2] * 0.01 - jnp.arange(x.shape[2])[:, None] * 0.02),
    "reductions_softmax_gelu": lambda x: (
        jax.nn.softmax(x * 3, axis=-1) + jax.nn.gelu(x, approximate=False)
        + x.mean(axis=(1, 2), keepdims=True) + x.max(axis=2, keepdims=True)
        + x.min(axis=1, keepdims=True)),
    "dot_general": lambda x: (
        jnp.einsum("bhwc,cd->bhwd", x, _M)[..., :3]
        + jnp.einsum("bhwc,bhvc->bhwv", x, x).mean(axis=-1, keepdims=True)),
    "convolutions": lambda x: jnp.concatenate([
        _conv(x, _W, window_strides=(1, 1), padding=((1, 1), (1, 1))),
        _conv(x, _W, window_strides=(1, 1), padding=((2, 2), (2, 2)), rhs_dilation=(2, 2)),
        _conv(jnp.concatenate([x] * 2, axis=-1)[..., :3], _G, window_strides=(1, 1),
              padding=((1, 1), (1, 1)), feature_group_count=3),
    ], axis=-1),
    "strided_and_transposed_convolutions": lambda x: _conv(  # Down x2, then up x2.
        _conv(x, _W, window_strides=(2, 2), padding=((1, 1), (1, 1))), _T,
        window_strides=(1, 1), padding=((2, 2), (2, 2)), lhs_dilation=(2, 2)),
    "take_along_an_axis": lambda x: jnp.concatenate([  # Computed indices, out of range too.
        jnp.take(x, jnp.arange(x.shape[2] + 2) - 1, axis=2, mode="clip")[:, :, 1:-1],
        jnp.take(x, jnp.arange(x.shape[1]) * 2 - 3, axis=1, fill_value=-1.0),
        jnp.take(x, jnp.array([[2, 0], [1, 5]]), axis=3)[..., 0, :1],
    ], axis=-1),
    "pad_to_min_size": lambda x: layers.pad_to_min_size(x, 9),  # A gather per short axis.
    "batched_point_gathers": lambda x: _batched_point_gathers(x),
    "max_pools": lambda x: jnp.concatenate([
        lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "VALID"),
        lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 2, 1), (1, 2, 2, 1),
                          ((0, 0), (1, 1), (0, 1), (0, 0)))[:, 1:, 1:],
    ], axis=-1),
}


def _batched_point_gathers(x):
  """GatherND with batch dims: `take_along_axis` (DySample's sampling; computed indices, some
  out of range, filled) and a vmapped 2-D point lookup (an index of two components)."""
  b, h, w, c = x.shape
  flat = x.reshape(b, h * w, c)
  index = (jnp.arange(h * w)[None, :] * 7 + jnp.arange(b)[:, None]) % (h * w + 3) - 1
  taken = jnp.take_along_axis(flat, index[..., None], axis=1, mode="fill", fill_value=-2.0)
  rows = jnp.broadcast_to(jnp.arange(h)[::-1][None, :, None], (b, h, w))
  cols = jnp.broadcast_to((jnp.arange(w) * 3 % w)[None, None, :], (b, h, w))
  looked_up = jax.vmap(lambda image, y, z: image[y, z])(x, rows, cols)
  return jnp.concatenate([taken.reshape(b, h, w, c), looked_up], axis=-1)


# Rounding steps to one output element of each function at the largest sizes (6x10, 14x4): a
# sum of n terms counts n, a transcendental 4 (XLA's and ONNX Runtime's approximations are each
# a few ulps off); pure data movement is exact (1: one step of slack).
FUNCTION_OPS = {
    "elementwise_and_lazy_broadcasts": 40,  # exp, sqrt, rsqrt, tanh, sigmoid, a division.
    "compare_select_round_rem": 8,  # Rounding is exact; the sum of six terms.
    "reshape_transpose_pixel_shuffle": 1,
    "pads_slices_reverse": 2,
    "iota_and_sizes": 4,
    "reductions_softmax_gelu": 60 + 20,  # The mean over h*w; softmax and erf.
    "dot_general": 3 + 3 + 10,  # Sums over 3 channels, then the mean over the width.
    "convolutions": 27,  # 3x3 taps x 3 channels.
    "strided_and_transposed_convolutions": 27 + 4 * 4 * 6,
    "take_along_an_axis": 1,
    "pad_to_min_size": 1,
    "batched_point_gathers": 1,
    "max_pools": 1,
}


@pytest.mark.numerics
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_translator_rules_match_jax_on_several_sizes(name):
  fn = FUNCTIONS[name]
  multiple = 2
  b, h, w = jax.export.symbolic_shape("b, h, w")
  closed = jax.make_jaxpr(fn)(jax.ShapeDtypeStruct((b, 2 * h, 2 * w, 3), jnp.float32))
  proto = jaxpr_to_onnx.convert(closed, {"b": (0, 1), "h": (1, 2), "w": (2, 2)})
  _assert_matches(_onnx_run(proto), jax.jit(fn), FUNCTION_OPS[name], multiple)


def test_unsupported_primitive_is_named():
  closed = jax.make_jaxpr(lambda x: jnp.sort(x, axis=1))(jnp.zeros((1, 4, 4, 3)))
  with pytest.raises(jaxpr_to_onnx.UnsupportedError, match="'sort'"):
    jaxpr_to_onnx.convert(closed, {})


def test_unsupported_gather_is_refused_in_one_line():
  """A gather none of the rules maps (computed indices into two axes that are not neighbours,
  no batch axes) is refused with what the translator handles, not exported wrong."""
  def fn(x):
    i = jnp.clip(x[:, 0, 0, 0], 0, 1).astype(jnp.int32)
    return x[i, :, i]
  closed = jax.make_jaxpr(fn)(jnp.zeros((2, 4, 4, 3)))
  with pytest.raises(onnx_graph.UnsupportedError, match="gather other than .* batched point"):
    jaxpr_to_onnx.convert(closed, {})


# --- Every generator, random weights (BatchNorm statistics included), through ONNX.

GENERATORS = {
    "msrresnet_x4": ("msrresnet", 4, dict(num_feat=8, num_block=2)),
    "msrresnet_x3": ("msrresnet", 3, dict(num_feat=8, num_block=1)),
    "edsr_x2": ("edsr", 2, dict(num_feat=8, num_block=2)),
    "rrdbnet_x4": ("rrdbnet", 4, dict(num_feat=8, num_block=1, num_grow_ch=4)),
    "rrdbnet_x2": ("rrdbnet", 2, dict(num_feat=8, num_block=1, num_grow_ch=4)),
    "rrdbnet_x1": ("rrdbnet", 1, dict(num_feat=8, num_block=1, num_grow_ch=4)),
    "srvgg_x4": ("srvgg", 4, dict(num_feat=8, num_conv=2)),
    "seed_x2": ("seed", 2, dict(num_feat=4, kernel_size=3)),
    "swinir_x2": ("swinir", 2, dict(embed_dim=8, depths=(2,), num_heads=(2,), window_size=4,
                                    num_feat=8)),
    "swinir_light_x4": ("swinir", 4, dict(embed_dim=8, depths=(2, 2), num_heads=(2, 2),
                                          window_size=4, upsampler="pixelshuffledirect")),
    "swinir_real_x4": ("swinir", 4, dict(embed_dim=8, depths=(2,), num_heads=(2,),
                                         window_size=4, upsampler="nearest+conv",
                                         resi_connection="3conv", num_feat=8)),
    "rrdbnet_old_x8": ("rrdbnet", 8, dict(num_feat=8, num_block=1, num_grow_ch=4)),
    "plksr_x2": ("plksr", 2, dict(dim=8, n_blocks=2, kernel_size=5)),
    "realplksr_x4": ("realplksr", 4, dict(dim=8, n_blocks=2, kernel_size=5, norm_groups=2,
                                          layer_norm=True)),
    "realplksr_dysample_x2": ("realplksr", 2, dict(dim=8, n_blocks=1, kernel_size=5,
                                                   norm_groups=2, dysample=True)),
    "span_x4": ("span", 4, dict(feature_channels=4)),
    "rcan_x2": ("rcan", 2, dict(n_resgroups=1, n_resblocks=2, n_feats=8, reduction=4)),
    "hat_x2": ("hat", 2, dict(embed_dim=8, depths=(2,), num_heads=(2,), window_size=4,
                              compress_ratio=2, squeeze_factor=2, num_feat=8)),
    # OmniSR and DAT pad images under 16 pixels (SHAPES has such sizes): gathers of symbolic
    # length max(size, 16); OmniSR's ESA resizes to the (symbolic) image size.
    "omnisr_x2": ("omnisr", 2, dict(num_feat=8, window_size=4, res_num=1)),
    "omnisr_x4": ("omnisr", 4, dict(num_feat=8, window_size=8, res_num=2, pe=False,
                                    bias=False)),
    "dat_x2": ("dat", 2, dict(embed_dim=32, depth=(2, 2), num_heads=(2, 2), split_size=(2, 4),
                              expansion_factor=2.0, num_feat=8)),
    "dat_light_x3": ("dat", 3, dict(embed_dim=32, depth=(2,), num_heads=(2,), split_size=(2, 4),
                                    expansion_factor=2.0, resi_connection="3conv",
                                    upsampler="pixelshuffledirect")),
}



def _generator(key, dtype=jnp.float32):
  name, scale, options = GENERATORS[key]
  model = models.create_model(name, scale, dtype=dtype, **options)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
  # Non-trivial BatchNorm statistics: the export must use the running averages.
  variables = jax.tree_util.tree_map_with_path(
      lambda path, v: v + 0.1 * jnp.cos(jnp.arange(v.size).reshape(v.shape))
      if "batch_stats" in jax.tree_util.keystr(path) else v, variables)
  return program_lib.InferenceProgram(model, variables, inference.input_multiple(model))


@pytest.mark.numerics
@pytest.mark.parametrize("key", sorted(GENERATORS))
def test_every_generator_exports_to_onnx_with_dynamic_sizes(key):
  program = _generator(key)
  proto = onnx_export.program_to_onnx(program)
  (dims,) = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
             for i in proto.graph.input]
  assert dims == ["batch", "height", "width", 3]
  assert proto.opset_import[0].version == onnx_export.OPSET == 18
  _assert_matches(_onnx_run(proto), jax.jit(program.float_fn()),
                  utils.network_ops(program.variables), program.multiple)


@pytest.mark.numerics
@pytest.mark.skipif("--xla_cpu_max_isa=SSE" in os.environ.get("XLA_FLAGS", ""),
                    reason="XLA:CPU cannot compile float16 conversions below AVX (F16C)")
def test_float16_onnx_matches_jaxsr_float16():
  program = _generator("msrresnet_x4", dtype=jnp.float16)
  proto = onnx_export.program_to_onnx(program)
  _assert_matches(_onnx_run(proto), jax.jit(program.float_fn()),
                  utils.network_ops(program.variables, np.float16), shapes=SHAPES[:1],
                  dtype=np.float16)


# --- Real weights: BasicSR / Real-ESRGAN / SwinIR fixtures (imported by jaxsr.convert) through
# ONNX give PyTorch's own outputs (tests/data/make_basicsr_golden.py, make_swinir_golden.py).

BASICSR = {"msrresnet_x4": "msrresnet", "rrdbnet_x2": "rrdbnet", "srvgg_x4": "srvgg",
           "edsr_x2": "edsr"}


@pytest.mark.numerics
@pytest.mark.parametrize("name", sorted(BASICSR) + ["swinir/light_x4", "swinir/real_x4_3conv"])
def test_imported_weights_through_onnx_give_pytorch_outputs(data_dir, tmp_path, name):
  arch = BASICSR.get(name, "swinir")
  loaded = interop_load.load_variables(
      str(data_dir / ("basicsr" if arch != "swinir" else "") / f"{name}.pth"), arch)
  hparams, variables = loaded.hparams, loaded.variables
  model = interop_load.create_module(arch, hparams)
  program = program_lib.InferenceProgram(model, variables, inference.input_multiple(model))
  path = tmp_path / "model.onnx"
  path.write_bytes(onnx_export.program_to_onnx(program).SerializeToString())
  run = runtimes._onnx_runner(str(path), threads=0)  # pylint: disable=protected-access
  if arch == "swinir":  # Odd sizes, padded to the window as the official test code does.
    golden = np.load(data_dir / "swinir_golden.npz")
    key = name.split("/")[1]
    cases = [(golden[f"{key}/input_{i}"], golden[f"{key}/output_{i}"]) for i in range(3)]
  else:
    golden = np.load(data_dir / "basicsr" / f"{name}.npz")
    cases = [(golden["input"].astype(np.float32) / 255, golden["output"])]
  for x, expected in cases:
    got = np.stack([inference.upscale_image(lambda lr: run(lr[None])[0], image, model.scale,
                                            multiple=program.multiple) for image in x])
    # PyTorch's float32 outputs (magnitudes up to ~2): relative to the largest.
    utils.assert_close(got, expected, ops=utils.network_ops(variables))


# --- StableHLO, SavedModel and TFLite, each in its runtime.

def _meta(program, fmt):
  return metadata_lib.build(fmt, "test", {}, program.scale, program.multiple, program.dtype,
                            {}, "test")


@pytest.mark.numerics
@pytest.mark.parametrize("fmt,key", [
    ("stablehlo", "rrdbnet_x2"), ("stablehlo", "seed_x2"), ("stablehlo", "swinir_x2"),
    ("savedmodel", "rrdbnet_x2"), ("savedmodel", "seed_x2"), ("savedmodel", "swinir_x2"),
    ("stablehlo", "realplksr_dysample_x2"), ("savedmodel", "plksr_x2"),
    ("stablehlo", "span_x4"), ("savedmodel", "rcan_x2"), ("stablehlo", "hat_x2"),
    ("stablehlo", "omnisr_x2"), ("savedmodel", "dat_x2"),
    ("tflite", "rrdbnet_x2"), ("tflite", "swinir_x2"), ("tflite", "srvgg_x4"),
])
def test_formats_run_in_their_runtimes_on_several_sizes(tmp_path, fmt, key):
  program = _generator(key)
  output = str(tmp_path / ("savedmodel" if fmt == "savedmodel" else f"model.{fmt}"))
  meta_path, meta = exporter.export(program, fmt, output, _meta(program, fmt))
  assert meta_path == metadata_lib.path_for(output) and os.path.isfile(meta_path)
  loaded = runtimes.load(output)
  assert (loaded.format, loaded.scale, loaded.multiple) == (fmt, program.scale,
                                                            program.multiple)
  _assert_matches(loaded.run, jax.jit(program.float_fn()), utils.network_ops(program.variables),
                  program.multiple)


@pytest.mark.numerics
@pytest.mark.parametrize("key", ["omnisr_x2", "dat_x2"])
def test_exports_pad_images_under_the_minimum_size_as_the_model_does(tmp_path, key):
  program = _generator(key)
  output = str(tmp_path / "model.onnx")
  exporter.export(program, "onnx", output, _meta(program, "onnx"))
  # In units of the multiple (OmniSR's window 4, DAT's 1): 1 pixel, on and next to 16.
  shapes = ((1, 1, 1), (2, 4, 3), (1, 2, 5)) if key.startswith("omnisr") else (
      (1, 1, 1), (2, 16, 2), (1, 15, 17))
  _assert_matches(runtimes.load(output).run, jax.jit(program.float_fn()),
                  utils.network_ops(program.variables), program.multiple, shapes)


@pytest.mark.numerics
@pytest.mark.parametrize("fmt", ["savedmodel", "tflite"])
def test_uint8_signature_is_the_quantized_float_output(tmp_path, fmt):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  program = _generator("msrresnet_x3")
  output = str(tmp_path / ("sm" if fmt == "savedmodel" else "m.tflite"))
  exporter.export(program, fmt, output, _meta(program, fmt))
  if fmt == "savedmodel":
    serve = tf.saved_model.load(output).signatures["serving_uint8"]
    run = lambda x: serve(input=tf.constant(x))["output"].numpy()
  else:
    runner = tf.lite.Interpreter(model_path=output).get_signature_runner("serving_uint8")
    run = lambda x: runner(input=x)["output"]
  x = (np.random.default_rng(0).random((2, 5, 7, 3)) * 255).astype(np.uint8)
  got = run(x)
  assert got.dtype == np.uint8 and got.shape == (2, 15, 21, 3)
  expected = np.asarray(jax.jit(program.float_fn())(x.astype(np.float32) / 255))
  # Another runtime: its float output is JAX's within rounding, so each uint8 is JAX's output
  # x255 rounded to nearest, i.e. within half a level plus that rounding tolerance (a value that
  # close to a tie may round either way; truncating or not clipping is off by up to 1).
  levels = np.clip(expected, 0, 1) * 255
  tol = utils.tolerance(ops=utils.network_ops(program.variables),
                        magnitude=np.abs(expected).max())
  assert np.max(np.abs(got - levels)) <= 0.5 + 255 * tol["atol"]


@pytest.mark.numerics
def test_stablehlo_runs_in_a_process_without_jaxsr(tmp_path):
  program = _generator("swinir_light_x4")
  path = tmp_path / "model.stablehlo"
  exporter.export(program, "stablehlo", str(path), _meta(program, "stablehlo"))
  x = np.random.default_rng(0).random((3, 8, 12, 3), np.float32)
  np.save(tmp_path / "x.npy", x)
  code = ("import sys, numpy as np, jax\n"
          f"exp = jax.export.deserialize(bytearray(open({str(path)!r}, 'rb').read()))\n"
          f"np.save({str(tmp_path / 'y.npy')!r}, np.asarray(exp.call(np.load("
          f"{str(tmp_path / 'x.npy')!r}))))\n"
          "assert not [m for m in sys.modules if m.startswith('jaxsr')], 'jaxsr imported'\n"
          "print(sorted(exp.platforms))\n")
  result = utils.run_process([sys.executable, "-c", code], cwd=str(tmp_path),
                             env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-2000:]
  assert "['cpu', 'cuda', 'tpu']" in result.stdout
  # The exported (portable) convolutions, compiled in another process: rounding may differ.
  utils.assert_close(np.load(tmp_path / "y.npy"), np.asarray(jax.jit(program.float_fn())(x)),
                     ops=utils.network_ops(program.variables))


def test_formats_refuse_dtypes_they_cannot_hold(tmp_path):
  program = _generator("msrresnet_x3", dtype=jnp.bfloat16)
  for fmt in ("onnx", "tflite"):
    with pytest.raises(exporter.ExportError, match="--dtype="):
      exporter.export(program, fmt, str(tmp_path / f"m.{fmt}"), _meta(program, fmt))
    assert not os.path.exists(tmp_path / f"m.{fmt}")


# --- The command line and `jaxsr.upscale --model`.

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  """A converted Real-ESRGAN SRVGGNetCompact x4 run (tests/data/basicsr/srvgg_x4.pth)."""
  workdir = tmp_path_factory.mktemp("run") / "w"
  path = os.path.join(os.path.dirname(__file__), "data", "basicsr", "srvgg_x4.pth")
  convert.convert(path, "srvgg", str(workdir))
  return workdir


@pytest.mark.numerics
def test_cli_exports_verifies_and_writes_metadata(run_dir, tmp_path):
  output = tmp_path / "out" / "sr.onnx"
  result = utils.run_module("jaxsr.export", f"--workdir={run_dir}", "--format=onnx",
                            f"--output={output}")
  assert "Verified in its runtime" in result.stderr
  meta = json.loads((tmp_path / "out" / "sr.onnx.metadata.json").read_text())
  assert meta["format"] == "onnx" and meta["opset"] == 18
  assert meta["model"]["name"] == "srvgg" and meta["model"]["num_conv"] == 2
  assert (meta["scale"], meta["input_multiple"], meta["dtype"]) == (4, 1, "float32")
  assert meta["source"]["step"] == 0 and meta["source"]["workdir"] == str(run_dir)
  assert meta["command"].startswith("python -m jaxsr.export --workdir=")
  assert meta["input"]["range"] == [0.0, 1.0] and meta["output"]["clipped"] is False

  # upscale --model gives what upscale --workdir gives (8-bit levels), with alpha and tiles.
  source = tmp_path / "in.png"
  rgba = (np.random.default_rng(0).random((13, 18, 4)) * 255).astype(np.uint8)
  Image.fromarray(rgba, "RGBA").save(source)
  for flag in (f"--model={output}", f"--workdir={run_dir}"):
    utils.run_module("jaxsr.upscale", flag, f"--input={source}",
                     f"--output={tmp_path / (flag[2:7] + '.png')}", "--tile=7", "--tile_pad=4")
  by_model = np.asarray(Image.open(tmp_path / "model.png"))
  assert by_model.shape == (52, 72, 4)
  # ONNX Runtime and XLA round differently: a value next to a rounding tie may land one level
  # either side.
  _, _, variables = inference.load_generator(str(run_dir))
  atol = utils.tolerance(ops=utils.network_ops(variables))["atol"]  # Values in [0, 1].
  utils.assert_levels_close(by_model, np.asarray(Image.open(tmp_path / "workd.png")), 255 * atol)


def test_cli_errors_are_one_clear_message(run_dir, tmp_path):
  def fails(module, *args):
    result = utils.run_process([sys.executable, "-m", module, *args],
                               env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()[-1]

  assert "No config.json" in fails("jaxsr.export", f"--workdir={tmp_path}", "--format=onnx")
  assert "--dtype=float32" in fails("jaxsr.export", f"--workdir={run_dir}", "--format=tflite",
                                    "--dtype=bfloat16", f"--output={tmp_path / 'm.tflite'}")
  (tmp_path / "m.xyz").write_bytes(b"")
  assert "Cannot tell the format" in fails("jaxsr.upscale", f"--model={tmp_path / 'm.xyz'}",
                                           f"--input={tmp_path}", f"--output={tmp_path}")


def test_bicubic_has_nothing_to_export():
  config = utils.tiny_config("")
  config.model.name = "bicubic"
  with pytest.raises(exporter.ExportError, match="no trained parameters"):
    exporter.program_from_generator(config, models.create_model("bicubic", 2), {})


@pytest.mark.numerics
def test_an_onnx_file_without_sidecar_reads_its_own_metadata(tmp_path):
  program = _generator("rrdbnet_x2")
  path = tmp_path / "m.onnx"
  exporter.export(program, "onnx", str(path), _meta(program, "onnx"))
  os.remove(metadata_lib.path_for(str(path)))
  loaded = runtimes.load(str(path))
  assert (loaded.scale, loaded.multiple, loaded.metadata["scale"]) == (2, 2, 2)
  image = np.random.default_rng(0).random((9, 11, 3)).astype(np.float32)
  sr = inference.upscale_image(lambda lr: loaded.run(lr[None])[0], image, 2, multiple=2)
  expected = inference.upscale_image(inference.make_upscaler(program.model, program.variables),
                                     image, 2, multiple=2)
  utils.assert_close(np.clip(sr, 0, 1), expected, ops=utils.network_ops(program.variables))


@pytest.mark.parametrize("key,message", [
    ("seed_x2", "transposed convolutions.*--format=onnx"),
    ("omnisr_x2", "TFLite cannot convert OmniSR: .*6-D.* --format=onnx"),
])
def test_tflite_refuses_what_it_cannot_run_with_a_clear_error(tmp_path, key, message):
  program = _generator(key)
  with pytest.raises(ValueError, match=message):
    exporter.export(program, "tflite", str(tmp_path / "m.tflite"), _meta(program, "tflite"))
  assert not os.path.exists(tmp_path / "m.tflite")


@pytest.mark.numerics
def test_portable_convolutions_trace_to_one_plain_convolution():
  from jaxsr.ops import conv  # pylint: disable=g-import-not-at-top
  x, kernel = jnp.ones((1, 5, 6, 3)), jnp.ones((3, 3, 3, 4))
  names = lambda closed: sorted({e.primitive.name for e in program_lib.equations(closed)})
  # Fresh functions: make_jaxpr caches traces by function (see `portable`'s docstring).
  assert "custom_vjp_call" in names(jax.make_jaxpr(lambda *a: conv.conv2d_same(*a))(x, kernel))
  with conv.portable():
    portable = jax.make_jaxpr(lambda *a: conv.conv2d_same(*a))(x, kernel)
  assert names(portable) == ["conv_general_dilated"]
  utils.assert_close(jax.extend.core.jaxpr_as_fun(portable)(x, kernel)[0],
                     conv.conv2d_same(x, kernel), ops=3 * 3 * 3)


@pytest.mark.parametrize("key,activation", [("rrdbnet_x4", "LeakyRelu"), ("srvgg_x4", "PRelu")])
def test_onnx_graph_fuses_bias_and_activation_into_ops_runtimes_fuse(key, activation):
  proto = onnx_export.program_to_onnx(_generator(key))
  ops = [n.op_type for n in proto.graph.node]
  convs = [n for n in proto.graph.node if n.op_type == "Conv"]
  assert activation in ops and "Where" not in ops
  assert convs and all(len(n.input) == 3 for n in convs)  # Bias inside every Conv.
  used = {i for n in proto.graph.node for i in n.input}
  assert all(i.name in used for i in proto.graph.initializer)
