"""VGG19 features: layer shapes, truncation, both weight loaders, preprocessing, weight lookup."""

import h5py
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr.interop import torch_io
from jaxsr.models import layers as layers_lib
from jaxsr.models import vgg

from tests import utils

# conv1_1 against a HIGHEST-precision lax convolution of the preprocessed input: 3x3 taps x 3
# channels and the bias, plus the preprocessing's own roundings (scale, mean, order).
CONV1_1_OPS = 27 + 1 + 3

VGG19_CONV_PARAMS = 20_024_384  # Keras VGG19(include_top=False).count_params().
TORCH_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
BLOCK_CONVS = ((1, 2, 3, 64), (2, 2, 64, 128), (3, 4, 128, 256), (4, 4, 256, 512),
               (5, 4, 512, 512))


def _conv_shapes():
  """[(convB_C, in, out)] of VGG19 in order."""
  shapes = []
  for block, n, cin, cout in BLOCK_CONVS:
    for i in range(1, n + 1):
      shapes.append((f"conv{block}_{i}", cin if i == 1 else cout, cout))
  return shapes


def write_keras_h5(path, params, new_style_names, drop=()):
  """Writes `params` in the legacy Keras-2 HDF5 weights layout of Keras' VGG19 notop file."""
  names = ["input_1"]
  for block, n, _, _ in BLOCK_CONVS:
    names += [f"block{block}_conv{i}" for i in range(1, n + 1)] + [f"block{block}_pool"]
  with h5py.File(path, "w") as f:
    f.attrs["layer_names"] = np.array([n.encode() for n in names])
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = b"2.2.4"
    for layer in names:
      group = f.create_group(layer)
      if "_conv" not in layer or layer in drop:
        group.attrs["weight_names"] = np.array([], dtype="S1")
        continue
      block, conv = layer[len("block"):].split("_conv")
      p = params[f"conv{block}_{conv}"]
      wnames = ([f"{layer}/kernel:0", f"{layer}/bias:0"] if new_style_names
                else [f"{layer}_W_1:0", f"{layer}_b_1:0"])
      group.attrs["weight_names"] = np.array([n.encode() for n in wnames])
      group.create_dataset(wnames[0], data=p["kernel"])
      group.create_dataset(wnames[1], data=p["bias"])


def write_torchvision_pth(path, params, drop=()):
  """Writes `params` as a torchvision vgg19 state dict (kernels as [out, in, 3, 3])."""
  state = {"classifier.0.weight": np.ones((2, 3), np.float32)}  # Ignored by the loader.
  for (name, _, _), index in zip(_conv_shapes(), TORCH_CONV_INDICES):
    if name in drop:
      continue
    state[f"features.{index}.weight"] = np.ascontiguousarray(
        params[name]["kernel"].transpose(3, 2, 0, 1))
    state[f"features.{index}.bias"] = params[name]["bias"]
  torch_io.save_state_dict(path, state)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
  """Random VGG19 weights (He-scaled, so activations stay O(1)) written in every format."""
  rng = np.random.default_rng(0)
  params = {}
  for name, cin, cout in _conv_shapes():
    params[name] = {
        "kernel": (rng.standard_normal((3, 3, cin, cout), np.float32)
                   * np.float32(np.sqrt(2.0 / (9 * cin)))),
        "bias": rng.uniform(-0.1, 0.1, cout).astype(np.float32)}
  folder = tmp_path_factory.mktemp("vgg_weights")
  paths = {"h5_old": str(folder / "old.h5"), "h5_new": str(folder / "new.hdf5"),
           "pth": str(folder / "vgg19.pth")}
  write_keras_h5(paths["h5_old"], params, new_style_names=False)
  write_keras_h5(paths["h5_new"], params, new_style_names=True)
  write_torchvision_pth(paths["pth"], params)
  return params, paths


@pytest.fixture(scope="module")
def image():
  return np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype(np.float32)


def test_layer_names_follow_basicsr():
  assert len(vgg.VGG19_LAYERS) == 37
  assert vgg.VGG19_LAYERS[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
  assert vgg.VGG19_LAYERS[-3:] == ("conv5_4", "relu5_4", "pool5")
  assert vgg.VGG19_LAYERS.index("conv3_4") + 2 == vgg.VGG19_LAYERS.index("pool3")


def test_params_stop_at_the_deepest_requested_layer():
  x = jnp.zeros((1, 16, 16, 3))
  init = lambda layers: jax.eval_shape(vgg.TorchvisionFeatures(layers).init, jax.random.key(0), x)
  shallow = init(("conv1_2",))["params"]
  assert sorted(shallow) == ["conv1_1", "conv1_2"]
  assert shallow["conv1_2"]["kernel"].shape == (3, 3, 64, 64)
  assert sorted(init(("relu1_1", "conv3_1"))["params"]) == [
      "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"]
  full = init(("pool5",))["params"]
  assert layers_lib.count_params(full) == VGG19_CONV_PARAMS
  for name, cin, cout in _conv_shapes():
    assert full[name]["kernel"].shape == (3, 3, cin, cout)
    assert full[name]["bias"].shape == (cout,)


@pytest.mark.exact("every loader copies the same float32 weights")
@pytest.mark.parametrize("key", ["h5_old", "h5_new", "pth"])
def test_loaders_read_the_same_weights(weights, key):
  params, paths = weights
  loaded, preprocessing = vgg.load_vgg19_params(paths[key])
  assert preprocessing == ("torch" if key == "pth" else "caffe")
  assert sorted(loaded) == sorted(params)
  for name in params:
    for leaf in ("kernel", "bias"):
      assert loaded[name][leaf].dtype == np.float32
      np.testing.assert_array_equal(loaded[name][leaf], params[name][leaf])


def _conv1_1_reference(x, params):
  """conv1_1 of preprocessed `x`: a 'SAME' lax convolution plus bias."""
  p = params["conv1_1"]
  y = lax.conv_general_dilated(jnp.asarray(x), jnp.asarray(p["kernel"]), (1, 1), "SAME",
                               dimension_numbers=("NHWC", "HWIO", "NHWC"),
                               precision=lax.Precision.HIGHEST)
  return np.asarray(y) + p["bias"]


@pytest.mark.exact("ReLU and max pooling select values of the same program's tensors")
@pytest.mark.numerics
def test_features_of_every_layer_with_caffe_weights(weights, image):
  params, paths = weights
  features = vgg.make_vgg_feature_fn(paths["h5_old"], vgg.VGG19_LAYERS)
  out = features(jnp.asarray(image))
  assert list(out) == list(vgg.VGG19_LAYERS)
  size, channels = 32, 64
  for name in vgg.VGG19_LAYERS:
    if name.startswith("conv"):
      channels = params[name]["kernel"].shape[-1]
    if name.startswith("pool"):
      size //= 2
    assert out[name].shape == (2, size, size, channels), name
    assert out[name].dtype == jnp.float32
  # Caffe preprocessing: x*255, RGB -> BGR, minus the BGR mean.
  caffe = image[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68], np.float32)
  utils.assert_close(out["conv1_1"], _conv1_1_reference(caffe, params), ops=CONV1_1_OPS)
  # ReLU and max pooling select values: exact.
  np.testing.assert_array_equal(out["relu3_4"], np.maximum(out["conv3_4"], 0))
  pool = np.asarray(out["relu5_4"]).reshape(2, 1, 2, 1, 2, 512).max((2, 4))
  np.testing.assert_array_equal(out["pool5"], pool)
  assert float(jnp.abs(out["relu5_4"]).mean()) > 0  # Not a dead network.


@pytest.mark.numerics
@pytest.mark.parametrize("use_input_norm", [True, False])
def test_torchvision_preprocessing(weights, image, use_input_norm):
  params, paths = weights
  out = vgg.make_vgg_feature_fn(paths["pth"], ["conv1_1"], use_input_norm)(jnp.asarray(image))
  assert list(out) == ["conv1_1"]
  x = image
  if use_input_norm:
    x = (image - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
  utils.assert_close(out["conv1_1"], _conv1_1_reference(x.astype(np.float32), params),
                     ops=CONV1_1_OPS)


@pytest.mark.numerics
def test_caffe_without_input_norm_is_bgr_times_255(weights, image):
  params, paths = weights
  out = vgg.make_vgg_feature_fn(paths["h5_new"], ["conv1_1"], use_input_norm=False)(
      jnp.asarray(image))
  utils.assert_close(out["conv1_1"], _conv1_1_reference(image[..., ::-1] * 255.0, params),
                     ops=CONV1_1_OPS)


@pytest.mark.exact("an .h5 round trip copies the weights")
def test_save_keras_h5_round_trip(weights, tmp_path):
  params, _ = weights
  vgg.save_keras_h5(str(tmp_path / "saved.h5"), params)
  loaded, preprocessing = vgg.load_keras_h5(str(tmp_path / "saved.h5"))
  assert preprocessing == "caffe" and set(loaded) == set(vgg.VGG19_CONVS)
  for name in vgg.VGG19_CONVS:
    np.testing.assert_array_equal(loaded[name]["kernel"], params[name]["kernel"])
    np.testing.assert_array_equal(loaded[name]["bias"], params[name]["bias"])


@pytest.mark.exact("the variables are the loaded weights, copied")
@pytest.mark.numerics
def test_apply_with_variables_as_arguments(weights, image):
  params, paths = weights
  apply, variables = vgg.make_vgg_feature_apply(paths["pth"], ["relu1_2"])
  assert sorted(variables["params"]) == ["conv1_1", "conv1_2"]
  np.testing.assert_array_equal(variables["params"]["conv1_2"]["kernel"],
                                params["conv1_2"]["kernel"])
  x = jnp.asarray(image[:1, :16, :16])
  closed = vgg.make_vgg_feature_fn(paths["pth"], ["relu1_2"])(x)["relu1_2"]
  # Weights as arguments vs as constants: other programs, equal up to rounding (conv1_1, conv1_2).
  utils.assert_close(jax.jit(apply)(variables, x)["relu1_2"], closed, ops=27 + 64 * 9)
  loss = lambda v, x: jnp.mean(apply(v, x)["relu1_2"])
  g_vars, g_x = jax.grad(loss, argnums=(0, 1))(variables, x)
  assert g_x.shape == x.shape and bool(jnp.all(jnp.isfinite(g_x)))
  assert float(jnp.abs(g_x).sum()) > 0
  for leaf in jax.tree_util.tree_leaves(g_vars):  # Frozen (stop_gradient): exact zeros.
    np.testing.assert_array_equal(leaf, np.zeros(leaf.shape))


def test_invalid_layers_and_files(weights, tmp_path):
  params, _ = weights
  with pytest.raises(ValueError, match="conv5_4"):  # The message lists the valid layers.
    vgg.make_vgg_feature_fn("", ["relu6_1"])
  text = tmp_path / "weights.bin"
  text.write_text("not weights")
  with pytest.raises(ValueError, match="format"):
    vgg.load_vgg19_params(str(text))
  partial_h5 = str(tmp_path / "partial.h5")
  write_keras_h5(partial_h5, params, new_style_names=True, drop=("block5_conv4",))
  with pytest.raises(ValueError, match=r"\['conv5_4'\]"):
    vgg.load_vgg19_params(partial_h5)
  partial_pth = str(tmp_path / "partial.pth")
  write_torchvision_pth(partial_pth, params, drop=("conv1_1", "conv3_2"))
  with pytest.raises(ValueError, match=r"\['conv1_1', 'conv3_2'\]"):
    vgg.load_vgg19_params(partial_pth)
  # A kernel stored without the [out, in, 3, 3] transpose.
  bad = dict(params, conv1_1={"kernel": params["conv1_1"]["kernel"].transpose(3, 2, 0, 1),
                              "bias": params["conv1_1"]["bias"]})
  untransposed = str(tmp_path / "untransposed.pth")
  write_torchvision_pth(untransposed, bad)
  with pytest.raises(ValueError, match=r"conv1_1 has kernel \(64, 3, 3, 3\)"):
    vgg.load_vgg19_params(untransposed)


def test_resolve_weights(tmp_path, monkeypatch):
  given = tmp_path / "mine.pth"
  given.write_bytes(b"x")
  assert vgg.resolve_vgg19_weights(str(given)) == str(given)
  with pytest.raises(FileNotFoundError, match="missing.h5"):
    vgg.resolve_vgg19_weights(str(tmp_path / "missing.h5"))

  cache = tmp_path / "keras_home" / "models" / vgg.KERAS_VGG19_FILE
  cache.parent.mkdir(parents=True)
  cache.write_bytes(b"x")
  monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
  assert vgg.resolve_vgg19_weights("") == str(cache)

  import keras  # pylint: disable=g-import-not-at-top
  calls = []

  def failing_get_file(*args, **kwargs):
    calls.append((args, kwargs))
    raise OSError("offline")

  monkeypatch.setattr(keras.utils, "get_file", failing_get_file)
  monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_home"))
  with pytest.raises(FileNotFoundError) as info:
    vgg.resolve_vgg19_weights("")
  assert len(calls) == 1 and vgg.KERAS_VGG19_URL in calls[0][0] + tuple(calls[0][1].values())
  message = str(info.value)
  assert "loss.vgg_weights" in message
  assert ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
          "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5") in message
  assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
