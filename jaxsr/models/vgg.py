"""Frozen VGG19 feature extractor for perceptual / style losses (BasicSR `VGGFeatureExtractor`).

Layer names follow BasicSR (`convX_Y` before the ReLU, `reluX_Y` after it, `poolX`). Weights come
from either pretrained file, which differ in their expected input:

* Keras applications `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5` (caffe-converted):
  'caffe' preprocessing, x*255, RGB -> BGR, minus the BGR mean `CAFFE_MEAN_BGR`.
* torchvision `vgg19-dcbb9e9d.pth`: 'torch' preprocessing, (x - mean) / std on RGB in [0, 1].
"""

import os
from typing import Callable, Mapping, Sequence

import flax.linen as nn
import h5py
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.models import layers as layers_lib

# (block, convs per block, channels) of VGG19.
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))


def _layer_names() -> tuple[str, ...]:
  names = []
  for block, num_convs, _ in _BLOCKS:
    for i in range(1, num_convs + 1):
      names += [f"conv{block}_{i}", f"relu{block}_{i}"]
    names.append(f"pool{block}")
  return tuple(names)


VGG19_LAYERS: tuple[str, ...] = _layer_names()  # BasicSR NAMES['vgg19'].
VGG19_CONVS: tuple[str, ...] = tuple(n for n in VGG19_LAYERS if n.startswith("conv"))
_CONV_CHANNELS = {f"conv{b}_{i}": c for b, n, c in _BLOCKS for i in range(1, n + 1)}
# Kernel shape [3, 3, in, out] of each conv.
_KERNEL_SHAPES = {name: (3, 3, _CONV_CHANNELS[prev] if prev else 3, _CONV_CHANNELS[name])
                  for prev, name in zip(("",) + VGG19_CONVS[:-1], VGG19_CONVS)}

KERAS_VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_VGG19_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
                   + KERAS_VGG19_FILE)
_KERAS_VGG19_MD5 = "253f8cb515780f3b799900260a226db6"  # As keras.applications.VGG19.
TORCHVISION_VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)

# torchvision `features.{i}` index of each conv, in VGG19_CONVS order.
_TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)

Params = dict[str, dict[str, np.ndarray]]


def check_layers(layers: Sequence[str]) -> None:
  """Raises ValueError unless `layers` is a non-empty sequence of `VGG19_LAYERS` names."""
  unknown = [name for name in layers if name not in VGG19_LAYERS]
  if unknown or not layers:
    raise ValueError(f"Unknown or no VGG19 layers {unknown or list(layers)}; valid layers: "
                     f"{list(VGG19_LAYERS)}")


def _layers_up_to(layers: Sequence[str]) -> tuple[str, ...]:
  """`VGG19_LAYERS` from the first to the deepest of `layers` (checked)."""
  check_layers(layers)
  return VGG19_LAYERS[:max(VGG19_LAYERS.index(name) for name in layers) + 1]


class VGG19Features(nn.Module):
  """VGG19 `features` up to the deepest requested layer (3x3 convs with bias, 2x2 max-pools).

  Attributes:
    layers: names from `VGG19_LAYERS` to return. Only the convs up to the deepest one exist
      as parameters (`{'conv1_1': {'kernel': [3, 3, in, out], 'bias': [out]}, ...}`).
  """
  layers: tuple[str, ...]

  @nn.compact
  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    """Features of `x` `[B, H, W, 3]`, already normalised as the weights expect.

    Returns:
      {layer: `[B, H / 2^p, W / 2^p, C]` float32} for each requested layer, p = pools before it.
    """
    wanted = set(self.layers)
    out = {}
    x = x.astype(jnp.float32)
    for name in _layers_up_to(self.layers):
      if name.startswith("conv"):
        x = layers_lib.Conv2d(_CONV_CHANNELS[name], name=name)(x)
      elif name.startswith("relu"):
        x = nn.relu(x)
      else:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      if name in wanted:
        out[name] = x
    return out


def _decode(names) -> list[str]:
  return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _check_convs(params: Params, path: str) -> Params:
  missing = [name for name in VGG19_CONVS if name not in params]
  if missing:
    raise ValueError(f"VGG19 weights file {path!r} lacks conv layers {missing}")
  for name in VGG19_CONVS:
    kernel, bias, shape = params[name]["kernel"], params[name]["bias"], _KERNEL_SHAPES[name]
    if kernel.shape != shape or bias.shape != shape[3:]:
      raise ValueError(f"VGG19 weights file {path!r}: layer {name} has kernel "
                       f"{kernel.shape} and bias {bias.shape}, not {shape} and {shape[3:]}")
  return params


def load_keras_h5(path: str) -> tuple[Params, str]:
  """Reads Keras' VGG19 notop weights (legacy Keras-2 HDF5 layout).

  Layer group `blockB_convC` becomes `convB_C`; its kernel `[3, 3, in, out]` and bias are
  told apart by rank, so both weight-name styles ('block1_conv1_W_1:0' and
  'block1_conv1/kernel:0') load.

  Returns:
    (params {'convB_C': {'kernel', 'bias'}} float32 numpy, 'caffe').
  """
  params = {}
  with h5py.File(path, "r") as f:
    root = f["model_weights"] if "model_weights" in f else f
    for layer in _decode(root.attrs.get("layer_names", [])):
      if not (layer.startswith("block") and "_conv" in layer):
        continue
      block, conv = layer[len("block"):].split("_conv")
      weights = {}
      for weight_name in _decode(root[layer].attrs.get("weight_names", [])):
        value = np.asarray(root[layer][weight_name], np.float32)
        weights["kernel" if value.ndim == 4 else "bias"] = value
      if set(weights) == {"kernel", "bias"}:
        params[f"conv{block}_{conv}"] = weights
  return _check_convs(params, path), "caffe"


def save_keras_h5(path: str, params: Mapping[str, Mapping[str, np.ndarray]]) -> None:
  """Writes VGG19 conv params `{'convB_C': {'kernel' [3, 3, in, out], 'bias'}}` in the Keras
  HDF5 weights layout `load_keras_h5` reads (e.g. random weights for benchmarks and tests)."""
  _check_convs(dict(params), path)
  with h5py.File(path, "w") as f:
    layer_names = []
    for name in VGG19_CONVS:
      block, conv = name[len("conv"):].split("_")
      layer = f"block{block}_conv{conv}"
      group = f.create_group(layer)
      weight_names = [f"{layer}/kernel:0", f"{layer}/bias:0"]
      group.attrs["weight_names"] = [n.encode() for n in weight_names]
      group[weight_names[0]] = np.asarray(params[name]["kernel"], np.float32)
      group[weight_names[1]] = np.asarray(params[name]["bias"], np.float32)
      layer_names.append(layer.encode())
    f.attrs["layer_names"] = layer_names


def load_torchvision_pth(path: str) -> tuple[Params, str]:
  """Reads torchvision's `vgg19-*.pth` state dict (`features.{i}.weight` `[out, in, 3, 3]`).

  Returns:
    (params {'convB_C': {'kernel' [3, 3, in, out], 'bias'}} float32 numpy, 'torch').
  """
  from jaxsr import torch_io  # pylint: disable=g-import-not-at-top

  state = torch_io.load_state_dict(path)
  params = {}
  for name, index in zip(VGG19_CONVS, _TORCHVISION_CONV_INDICES):
    weight, bias = state.get(f"features.{index}.weight"), state.get(f"features.{index}.bias")
    if weight is not None and bias is not None:
      params[name] = {"kernel": layers_lib.torch_conv_weight_to_flax(weight).astype(np.float32),
                      "bias": np.asarray(bias, np.float32)}
  return _check_convs(params, path), "torch"


def load_vgg19_params(path: str) -> tuple[Params, str]:
  """Loads VGG19 conv weights from a Keras .h5/.hdf5 or torchvision .pth/.pt file.

  Returns:
    (params, preprocessing), preprocessing 'caffe' (Keras) or 'torch' (torchvision).

  Raises:
    ValueError: unknown file type, or conv layers missing from the file.
  """
  with open(path, "rb") as f:
    magic = f.read(8)
  ext = os.path.splitext(path)[1].lower()
  if magic == b"\x89HDF\r\n\x1a\n" or ext in (".h5", ".hdf5"):
    return load_keras_h5(path)
  if magic[:4] == b"PK\x03\x04" or ext in (".pth", ".pt"):
    return load_torchvision_pth(path)
  raise ValueError(f"Cannot tell the format of VGG19 weights file {path!r}: expected a Keras "
                   ".h5/.hdf5 or a torchvision .pth/.pt file")


def _weights_help() -> str:
  return ("Provide VGG19 weights with --config.loss.vgg_weights=<file>, either the Keras file "
          f"{KERAS_VGG19_URL} or the torchvision file {TORCHVISION_VGG19_URL}")


def resolve_vgg19_weights(path: str) -> str:
  """The VGG19 weights file to use.

  Args:
    path: a weights file, or '' for Keras' cached notop file (`$KERAS_HOME` or ~/.keras, under
      models/), downloaded with `keras.utils.get_file` if not cached.

  Raises:
    FileNotFoundError: `path` does not exist, or '' and the Keras file can be neither found nor
      downloaded (the message says how to provide weights).
  """
  if path:
    if not os.path.exists(path):
      raise FileNotFoundError(f"VGG19 weights file {path!r} does not exist. {_weights_help()}")
    return path
  keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
  cached = os.path.join(keras_home, "models", KERAS_VGG19_FILE)
  if os.path.exists(cached):
    return cached
  try:
    import keras  # pylint: disable=g-import-not-at-top
    return keras.utils.get_file(KERAS_VGG19_FILE, KERAS_VGG19_URL, cache_subdir="models",
                                file_hash=_KERAS_VGG19_MD5, cache_dir=keras_home)
  except Exception as e:  # pylint: disable=broad-except
    raise FileNotFoundError(f"No VGG19 weights cached at {cached} and downloading them failed "
                            f"({e}). {_weights_help()}") from e


def preprocess(x: jax.Array, preprocessing: str, use_input_norm: bool = True) -> jax.Array:
  """Maps RGB `[B, H, W, 3]` in [0, 1] to the float32 input that the weights expect.

  'caffe': x*255, RGB -> BGR, minus `CAFFE_MEAN_BGR` (no mean when not `use_input_norm`).
  'torch': (x - `TORCH_MEAN_RGB`) / `TORCH_STD_RGB` (x itself when not `use_input_norm`).
  """
  x = x.astype(jnp.float32)
  if preprocessing == "caffe":
    x = x[..., ::-1] * 255.0
    return x - jnp.asarray(CAFFE_MEAN_BGR, jnp.float32) if use_input_norm else x
  if preprocessing == "torch":
    if not use_input_norm:
      return x
    return (x - jnp.asarray(TORCH_MEAN_RGB, jnp.float32)) / jnp.asarray(TORCH_STD_RGB,
                                                                        jnp.float32)
  raise ValueError(f"Unknown VGG preprocessing {preprocessing!r}; expected 'caffe' or 'torch'")


def make_vgg_feature_apply(weights_path: str, layers: Sequence[str], use_input_norm: bool = True
                           ) -> tuple[Callable[..., Mapping[str, jax.Array]], dict]:
  """Loads VGG19 weights once; returns `(apply, variables)` with the params kept separate.

  Passing `variables` into a jitted step as an argument, rather than closing over them as
  `make_vgg_feature_fn` does, keeps the ~80 MB of weights out of the compiled program
  (measured on CPU for conv5_4: 2.6 s instead of 6.6 s to compile).

  Args:
    weights_path: see `resolve_vgg19_weights` ('' for Keras' file).
    layers: names from `VGG19_LAYERS`.
    use_input_norm: apply the weights' mean/std normalisation (see `preprocess`).

  Returns:
    `apply(variables, x)`: x RGB `[B, H, W, 3]` in [0, 1] -> {layer: `[B, h, w, C]` float32},
    no gradient into `variables`; and `variables` = {'params': {convB_C: {kernel, bias}}} with
    only the convs up to the deepest layer, float32 jnp arrays.
  """
  layers = tuple(layers)
  needed = [name for name in _layers_up_to(layers) if name.startswith("conv")]
  params, preprocessing = load_vgg19_params(resolve_vgg19_weights(weights_path))
  model = VGG19Features(layers)
  variables = {"params": {name: {k: jnp.asarray(v, jnp.float32) for k, v in params[name].items()}
                          for name in needed}}

  def apply(variables: dict, x: jax.Array) -> Mapping[str, jax.Array]:
    return model.apply(jax.lax.stop_gradient(variables),
                       preprocess(x, preprocessing, use_input_norm))

  return apply, variables


def make_vgg_feature_fn(weights_path: str, layers: Sequence[str], use_input_norm: bool = True
                        ) -> Callable[[jax.Array], Mapping[str, jax.Array]]:
  """A frozen VGG19 feature function; weights are resolved and loaded once, here.

  Args:
    weights_path: see `resolve_vgg19_weights` ('' for Keras' file).
    layers: names from `VGG19_LAYERS`.
    use_input_norm: apply the weights' mean/std normalisation (see `preprocess`).

  Returns:
    `features(x)`: x RGB `[B, H, W, 3]` in [0, 1] -> {layer: `[B, h, w, C]` float32}. Pure;
    the params are constants under `stop_gradient` (embedded in a jitted caller's program;
    see `make_vgg_feature_apply` to pass them as arguments instead).
  """
  apply, variables = make_vgg_feature_apply(weights_path, layers, use_input_norm)
  return lambda x: apply(variables, x)
