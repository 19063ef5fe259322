"""MATLAB bicubic imresize: JAX, numpy and TensorFlow versions against BasicSR golden vectors."""

import functools
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

from jaxsr.data.imresize_tf import imresize_tf
from jaxsr.ops import bicubic_taps
from jaxsr.ops.imresize import imresize, imresize_np, resize_matrix

from tests import utils

pytestmark = pytest.mark.numerics

GOLDEN_CASES = ("random_17x23", "random_gray_31x20x1", "bird_crop_96x96", "butterfly_crop_65x77")
GOLDEN_RESIZES = [(d, s) for d in ("down", "up") for s in (2, 3, 4)]


@functools.lru_cache(maxsize=None)
def _golden(data_dir):
  with np.load(data_dir / "imresize_golden.npz") as f:
    return dict(f)


def _golden_case(data_dir, case, direction, factor):
  """(input, scale, reference output, function selecting the stored part of an output)."""
  golden = _golden(data_dir)
  key = f"{case}/{direction}_x{factor}"
  if f"{key}_rows" in golden:  # Big outputs are stored only at some rows / columns.
    rows, cols = golden[f"{key}_rows"], golden[f"{key}_cols"]
    select = lambda y: y[np.ix_(rows, cols)]
  else:
    select = lambda y: y
  scale = 1.0 / factor if direction == "down" else float(factor)
  return golden[f"{case}/input"], scale, golden[key], select


def _expected_shape(shape, scale):
  """MATLAB output shape of an image `[H, W, C]`."""
  return (int(np.ceil(shape[0] * scale)), int(np.ceil(shape[1] * scale)), shape[2])


def _ops(scale):
  """Rounding steps of one output pixel: two passes (rows, columns) over the kernel's taps
  (MATLAB's 4 + 2, the 4 widened to 4 / scale when a downscale is antialiased)."""
  return 2 * (int(np.ceil(4 / min(scale, 1.0))) + 2)


def _assert_matches_reference(output, reference, scale):
  """Within float32 rounding of the resize (images in [0, 1]; the reference is float32 too),
  and the same 8-bit value except where the reference is that close to a rounding tie."""
  assert output.shape == reference.shape
  tol = utils.tolerance(ops=_ops(scale))
  np.testing.assert_allclose(output, reference, **tol)
  differs = np.round(output * 255) != np.round(reference * 255)
  # Ties (x.5 / 255, e.g. averages of two 8-bit pixels when halving) round either way under
  # float32 noise; everything else must round identically.
  at_tie = np.abs(np.mod(reference * 255, 1.0) - 0.5) <= 255 * (tol["atol"] + tol["rtol"])
  assert not np.any(differs & ~at_tie)
  assert np.mean(differs) < 0.005


@pytest.mark.parametrize("direction,factor", GOLDEN_RESIZES)
@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_jax_imresize_matches_basicsr(data_dir, case, direction, factor):
  image, scale, reference, select = _golden_case(data_dir, case, direction, factor)
  output = imresize(jnp.asarray(image), scale)
  assert output.dtype == jnp.float32
  _assert_matches_reference(select(np.asarray(output)), reference, scale)
  _assert_matches_reference(select(imresize_np(image, scale)), reference, scale)


@pytest.mark.parametrize("direction,factor", GOLDEN_RESIZES)
@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_tf_imresize_matches_basicsr(data_dir, case, direction, factor):
  image, scale, reference, select = _golden_case(data_dir, case, direction, factor)
  output = imresize_tf(tf.constant(image), scale)
  assert output.shape == _expected_shape(image.shape, scale)
  _assert_matches_reference(select(output.numpy()), reference, scale)


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 0.3, 1.0, 1.7, 2.0, 3.0, 4.0])
def test_tf_equals_jax_with_batch_dims(scale):
  images = np.random.default_rng(0).uniform(size=(2, 13, 18, 3)).astype(np.float32)
  jax_output = np.asarray(imresize(images, scale))
  tf_output = imresize_tf(tf.constant(images), scale).numpy()
  assert jax_output.shape == (2, int(np.ceil(13 * scale)), int(np.ceil(18 * scale)), 3)
  utils.assert_close(tf_output, jax_output, ops=_ops(scale), magnitude=1.0)
  utils.assert_close(imresize_np(images, scale), jax_output, ops=_ops(scale), magnitude=1.0)


def test_tf_dynamic_shapes_in_dataset_map():
  rng = np.random.default_rng(1)
  images = [rng.uniform(size=s).astype(np.float32) for s in ((21, 16, 3), (12, 30, 3))]
  dataset = tf.data.Dataset.from_generator(
      lambda: iter(images), output_signature=tf.TensorSpec([None, None, 3], tf.float32))
  dataset = dataset.map(lambda x: imresize_tf(x, 0.25), num_parallel_calls=2, deterministic=True)
  outputs = list(dataset.as_numpy_iterator())
  assert [o.shape for o in outputs] == [(6, 4, 3), (3, 8, 3)]
  for image, output in zip(images, outputs):
    utils.assert_close(output, np.asarray(imresize(image, 0.25)), ops=_ops(0.25), magnitude=1.0)


def test_jit_matches_eager_and_keeps_dtype():
  images = jnp.asarray(np.random.default_rng(2).uniform(size=(1, 9, 10, 3)), jnp.bfloat16)
  jitted = jax.jit(lambda x: imresize(x, 3.0))(images)
  eager = imresize(images, 3.0)
  assert jitted.dtype == eager.dtype == jnp.bfloat16 and jitted.shape == (1, 27, 30, 3)
  # Both are the float32 resize rounded once to bfloat16; jit and eager round the float32 sums
  # differently, so a value next to a bfloat16 tie may land one bfloat16 ulp either side.
  reference = imresize(images.astype(jnp.float32), 3.0)
  utils.assert_close(jitted, reference, jnp.bfloat16, ulps=1)
  utils.assert_close(eager, reference, jnp.bfloat16, ulps=1)


def test_resize_matrix_first_row_by_hand():
  # x2 up, output pixel 1 sits at input coordinate 0.75 (1-based): taps at 1-based -1, 0, 1, 2
  # with cubic weights w(1.75), w(0.75), w(0.25), w(1.25); -1 and 0 mirror to pixels 2 and 1.
  w_175, w_075, w_025, w_125 = -0.0234375, 0.2265625, 0.8671875, -0.0703125
  expected = [w_075 + w_025, w_175 + w_125, 0.0, 0.0]
  np.testing.assert_allclose(resize_matrix(4, 8, 2.0)[0], expected, atol=1e-15)


@pytest.mark.parametrize("in_size,scale", [(1, 0.25), (2, 0.25), (3, 4.0), (7, 1 / 3), (50, 0.5)])
def test_resize_matrix_rows_sum_to_one(in_size, scale):
  out_size = int(np.ceil(in_size * scale))
  matrix = resize_matrix(in_size, out_size, scale)
  assert matrix.shape == (out_size, in_size)
  np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)


def test_scale_one_is_identity():
  image = np.random.default_rng(3).uniform(size=(5, 7, 2)).astype(np.float32)
  utils.assert_close(np.asarray(imresize(image, 1.0)), image, ops=_ops(1.0))
  utils.assert_close(imresize_tf(image, 1.0).numpy(), image, ops=_ops(1.0))


def test_mirror_index_is_matlab_symmetric():
  # [a b c] padded symmetrically: ... b c c b a | a b c | c b a a b ...
  indices = bicubic_taps.mirror_index(np, np.arange(-5.0, 8.0), 3.0)
  np.testing.assert_array_equal(indices, [1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1])


def test_tiny_inputs_are_mirrored_not_out_of_range():
  # A 1-pixel-high image: every tap mirrors onto that row, so rows come out constant.
  image = np.random.default_rng(4).uniform(size=(1, 6, 3)).astype(np.float32)
  output = imresize_tf(image, 4.0).numpy()
  assert output.shape == (4, 24, 3)
  utils.assert_close(output, np.broadcast_to(output[:1], output.shape), ops=_ops(4.0))
  utils.assert_close(np.asarray(imresize(image, 4.0)), output, ops=_ops(4.0))


def test_importing_tf_version_adds_no_jax_modules():
  code = ("import sys, tensorflow\n"
          "before = {m for m in sys.modules if m.split('.')[0] in ('jax', 'flax')}\n"
          "import jaxsr.data.imresize_tf\n"
          "after = {m for m in sys.modules if m.split('.')[0] in ('jax', 'flax')}\n"
          "assert after == before, sorted(after - before)\n")
  repo_root = pathlib.Path(__file__).parents[1]
  env = dict(os.environ, PYTHONPATH=str(repo_root))
  utils.run_process([sys.executable, "-c", code], check=True, cwd=repo_root, env=env)
