"""Frozen torchvision-style feature extractors: VGG19 and VGG16 (perceptual / style losses,
BasicSR `VGGFeatureExtractor`; LPIPS) and AlexNet (LPIPS).

Layer names follow BasicSR (`convX_Y` before the ReLU, `reluX_Y` after it, `poolX`; AlexNet:
`convX`, `reluX`, `poolX`); the i-th name of an architecture's `layers` is torchvision's
`features.{i}`. VGG weights come from either pretrained file, which differ in their expected
input:

* Keras applications `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5` (caffe-converted,
  VGG19 only): 'caffe' preprocessing, x*255, RGB -> BGR, minus the BGR mean `CAFFE_MEAN_BGR`.
* torchvision `vgg19-dcbb9e9d.pth` / `vgg16-397923af.pth` / `alexnet-owt-7be5be79.pth`:
  'torch' preprocessing, (x - mean) / std on RGB in [0, 1].
"""

import os
from typing import Callable, Mapping, NamedTuple, Sequence

import flax.linen as nn
import h5py
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.models import layers as layers_lib


class FeatureArch(NamedTuple):
  """A torchvision `features` stack of convs (with bias), ReLUs and max-pools.

  Attributes:
    name: display name, e.g. 'VGG19'.
    layers: layer names; the i-th is torchvision's `features.{i}` (`conv*` a Conv2d, `relu*` a
      ReLU, `pool*` a MaxPool2d).
    convs: (name, in, out, kernel, stride, padding) of each conv, in order.
    pool: (window, stride) of every max-pool (no padding, floor mode).
  """
  name: str
  layers: tuple[str, ...]
  convs: tuple[tuple[str, int, int, int, int, int], ...]
  pool: tuple[int, int]


def _vgg_arch(name: str, blocks: Sequence[tuple[int, int, int]]) -> FeatureArch:
  """VGG from (block, convs per block, channels): 3x3 'same' convs, 2x2 stride-2 pools."""
  layers, convs, channels = [], [], 3
  for block, num_convs, out in blocks:
    for i in range(1, num_convs + 1):
      layers += [f"conv{block}_{i}", f"relu{block}_{i}"]
      convs.append((f"conv{block}_{i}", channels, out, 3, 1, 1))
      channels = out
    layers.append(f"pool{block}")
  return FeatureArch(name, tuple(layers), tuple(convs), (2, 2))


ARCHS: dict[str, FeatureArch] = {
    "vgg16": _vgg_arch("VGG16", ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512),
                                 (5, 3, 512))),
    "vgg19": _vgg_arch("VGG19", ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512),
                                 (5, 4, 512))),
    "alexnet": FeatureArch(  # torchvision `alexnet().features`.
        "AlexNet",
        ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3", "conv4",
         "relu4", "conv5", "relu5", "pool5"),
        (("conv1", 3, 64, 11, 4, 2), ("conv2", 64, 192, 5, 1, 2), ("conv3", 192, 384, 3, 1, 1),
         ("conv4", 384, 256, 3, 1, 1), ("conv5", 256, 256, 3, 1, 1)),
        (3, 2)),
}

VGG19_LAYERS: tuple[str, ...] = ARCHS["vgg19"].layers  # BasicSR NAMES['vgg19'].
VGG19_CONVS: tuple[str, ...] = tuple(c[0] for c in ARCHS["vgg19"].convs)
VGG16_LAYERS: tuple[str, ...] = ARCHS["vgg16"].layers  # BasicSR NAMES['vgg16'].
ALEXNET_LAYERS: tuple[str, ...] = ARCHS["alexnet"].layers

KERAS_VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_VGG19_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
                   + KERAS_VGG19_FILE)
_KERAS_VGG19_MD5 = "253f8cb515780f3b799900260a226db6"  # As keras.applications.VGG19.
TORCHVISION_VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)

Params = dict[str, dict[str, np.ndarray]]


def get_arch(arch: str) -> FeatureArch:
  """The `ARCHS` entry 'vgg16', 'vgg19' or 'alexnet' (ValueError otherwise)."""
  if arch not in ARCHS:
    raise ValueError(f"Unknown feature architecture {arch!r}; expected one of {list(ARCHS)}")
  return ARCHS[arch]


def check_layers(layers: Sequence[str], arch: str = "vgg19") -> None:
  """Raises ValueError unless `layers` is a non-empty sequence of `arch`'s layer names."""
  spec = get_arch(arch)
  unknown = [name for name in layers if name not in spec.layers]
  if unknown or not layers:
    raise ValueError(f"Unknown or no {spec.name} layers {unknown or list(layers)}; valid "
                     f"layers: {list(spec.layers)}")


def _layers_up_to(layers: Sequence[str], arch: str = "vgg19") -> tuple[str, ...]:
  """`arch`'s layers from the first to the deepest of `layers` (checked)."""
  check_layers(layers, arch)
  all_layers = ARCHS[arch].layers
  return all_layers[:max(all_layers.index(name) for name in layers) + 1]


class TorchvisionFeatures(nn.Module):
  """torchvision `features` of `arch` up to the deepest requested layer.

  Attributes:
    layers: names from `arch`'s layers (e.g. `VGG19_LAYERS`) to return. Only the convs up to
      the deepest one exist as parameters (`{'conv1_1': {'kernel': [k, k, in, out],
      'bias': [out]}, ...}`).
    arch: 'vgg19' (default), 'vgg16' or 'alexnet'.
  """
  layers: tuple[str, ...]
  arch: str = "vgg19"

  @nn.compact
  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    """Features of `x` `[B, H, W, 3]`, already normalised as the weights expect.

    Returns:
      {layer: `[B, h, w, C]` float32} for each requested layer (VGG: h = H / 2^p, p = pools
      before it).
    """
    spec = get_arch(self.arch)
    convs = {conv[0]: conv for conv in spec.convs}
    window, stride = spec.pool
    wanted = set(self.layers)
    out = {}
    x = x.astype(jnp.float32)
    for name in _layers_up_to(self.layers, self.arch):
      if name.startswith("conv"):
        _, _, features, kernel, conv_stride, padding = convs[name]
        x = layers_lib.Conv2d(features, kernel, stride=conv_stride, padding=padding,
                              name=name)(x)
      elif name.startswith("relu"):
        x = nn.relu(x)
      else:
        x = nn.max_pool(x, (window, window), strides=(stride, stride))
      if name in wanted:
        out[name] = x
    return out


def _decode(names) -> list[str]:
  return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _check_convs(params: Params, path: str, arch: str = "vgg19") -> Params:
  """`params`, checked to hold every conv of `arch` with its kernel `[k, k, in, out]` and bias."""
  spec = get_arch(arch)
  missing = [conv[0] for conv in spec.convs if conv[0] not in params]
  if missing:
    raise ValueError(f"{spec.name} weights file {path!r} lacks conv layers {missing}")
  for name, cin, cout, k, _, _ in spec.convs:
    kernel, bias, shape = params[name]["kernel"], params[name]["bias"], (k, k, cin, cout)
    if kernel.shape != shape or bias.shape != shape[3:]:
      raise ValueError(f"{spec.name} weights file {path!r}: layer {name} has kernel "
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
  try:
    file = h5py.File(path, "r")
  except OSError as e:  # Not HDF5, truncated: h5py's OSError names no fix.
    raise ValueError(f"VGG19 weights file {path!r} is not a readable HDF5 file ({e}). "
                     f"{_weights_help()}") from None
  with file as f:
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


def load_torchvision_pth(path: str, arch: str = "vgg19") -> tuple[Params, str]:
  """Reads torchvision's `vgg19-*.pth` (or `vgg16-*`, `alexnet-*`: see `arch`) state dict.

  Conv weights are `features.{i}.weight` `[out, in, k, k]` and `features.{i}.bias`, i the
  conv's index in `ARCHS[arch].layers`; other entries (the classifier) are ignored.

  Returns:
    (params {conv: {'kernel' [k, k, in, out], 'bias' [out]}} float32 numpy, 'torch').
  """
  from jaxsr.interop import torch_io  # pylint: disable=g-import-not-at-top

  state = torch_io.load_state_dict(path)
  spec = get_arch(arch)
  params = {}
  for name, *_ in spec.convs:
    index = spec.layers.index(name)
    weight, bias = state.get(f"features.{index}.weight"), state.get(f"features.{index}.bias")
    if weight is not None and bias is not None:
      params[name] = {"kernel": layers_lib.torch_conv_weight_to_flax(weight).astype(np.float32),
                      "bias": np.asarray(bias, np.float32)}
  return _check_convs(params, path, arch), "torch"


def load_vgg19_params(path: str) -> tuple[Params, str]:
  """Loads VGG19 conv weights from a Keras .h5/.hdf5 or torchvision .pth/.pt file.

  Returns:
    (params, preprocessing), preprocessing 'caffe' (Keras) or 'torch' (torchvision).

  Raises:
    ValueError: unknown or unreadable file, or conv layers missing from the file.
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
  model = TorchvisionFeatures(layers)
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
