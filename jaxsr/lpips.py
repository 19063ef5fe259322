"""LPIPS v0.1 perceptual distance (Zhang et al. 2018) with AlexNet or VGG16 features.

Computes what the `lpips` package's `LPIPS(net=net)(x, y, normalize=True)` computes, on the
same weights: inputs in [0, 1] are mapped to [-1, 1] and through the scaling layer
(z - `SHIFT`) / `SCALE`; at each of five ReLU taps of the torchvision backbone the features
are unit-normalised over channels (f / (||f|| + `EPS`)), their squared difference is weighted
by the tap's non-negative linear head (a 1x1 conv to one channel) and averaged over space;
the five terms are summed.

Weights, both needed, are read from local files only:
* linear heads: the package's `weights/v0.1/{alex,vgg}.pth` (`lin{k}.model.1.weight`
  `[1, C, 1, 1]`), by default from an installed `lpips` package (not imported);
* backbone: torchvision's ImageNet `alexnet-owt-7be5be79.pth` / `vgg16-397923af.pth`, by
  default from the torch hub cache.
"""

import importlib.util
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.interop import torch_io
from jaxsr.models import vgg

SHIFT = (-0.030, -0.088, -0.188)  # The package's ScalingLayer, for inputs in [-1, 1].
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10  # `lpips.normalize_tensor`.

# net -> (`vgg.ARCHS` key, the five tapped layers, torchvision weights file, the smallest
# image side with nonempty relu5 features: VGG16 pools 4 times by 2; AlexNet's relu5 follows
# pool2 (3x3, stride 2), which needs 3x3 out of pool1, which needs 7x7 out of conv1 (11x11,
# stride 4, padding 2): (H + 4 - 11) // 4 + 1 >= 7).
_NETS = {
    "alex": ("alexnet", ("relu1", "relu2", "relu3", "relu4", "relu5"),
             "alexnet-owt-7be5be79.pth", 31),
    "vgg": ("vgg16", ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),
            "vgg16-397923af.pth", 16),
}
NETS = tuple(_NETS)
BACKBONE_URL = "https://download.pytorch.org/models/{file}"
LIN_URL = ("https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/"
           "{net}.pth")

Params = dict[str, dict]


def _check_net(net: str) -> tuple[str, tuple[str, ...], str, int]:
  if net not in _NETS:
    raise ValueError(f"Unknown LPIPS net {net!r}; expected one of {list(NETS)}")
  return _NETS[net]


def torch_hub_checkpoints() -> str:
  """torch's hub download folder: `$TORCH_HOME/hub/checkpoints`, by default
  `${XDG_CACHE_HOME:-~/.cache}/torch/hub/checkpoints`."""
  torch_home = os.getenv("TORCH_HOME",
                         os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
  return os.path.join(os.path.expanduser(torch_home), "hub", "checkpoints")


def _package_lin_file(net: str) -> str:
  """`weights/v0.1/{net}.pth` of the installed `lpips` package (found, not imported), or ''."""
  try:
    spec = importlib.util.find_spec("lpips")
  except (ImportError, ValueError):
    return ""
  for folder in (spec.submodule_search_locations or []) if spec else []:
    path = os.path.join(folder, "weights", "v0.1", f"{net}.pth")
    if os.path.isfile(path):
      return path
  return ""


def resolve_lpips_weights(net: str, lin_path: str = "",
                          backbone_path: str = "") -> tuple[str, str]:
  """The LPIPS weight files to use.

  Args:
    net: 'alex' or 'vgg'.
    lin_path: linear-head file (`eval.lpips_weights`); '' for the installed `lpips` package's
      `weights/v0.1/{net}.pth`.
    backbone_path: torchvision backbone file (`eval.lpips_backbone`); '' for
      `torch_hub_checkpoints()/alexnet-owt-7be5be79.pth` (alex) or `.../vgg16-397923af.pth`.

  Returns:
    (lin_path, backbone_path), both existing files.

  Raises:
    ValueError: unknown `net`, or a file missing (the message names the config keys, the
      expected files and where to download them).
  """
  _, _, backbone_file, _ = _check_net(net)
  lin = lin_path or _package_lin_file(net)
  backbone = backbone_path or os.path.join(torch_hub_checkpoints(), backbone_file)
  problems = []
  if not os.path.isfile(lin):
    where = f"{lin_path!r} does not exist" if lin_path else "no installed lpips package has them"
    problems.append(
        f"LPIPS-{net} linear heads: {where}. Set eval.lpips_weights to the lpips package's "
        f"weights/v0.1/{net}.pth ({LIN_URL.format(net=net)}) or `pip install lpips`.")
  if not os.path.isfile(backbone):
    problems.append(
        f"LPIPS-{net} backbone: {backbone!r} does not exist. Set eval.lpips_backbone to "
        f"torchvision's {backbone_file} ({BACKBONE_URL.format(file=backbone_file)}) or put "
        f"that file in {torch_hub_checkpoints()}.")
  if problems:
    raise ValueError(" ".join(problems))
  return lin, backbone


def load_lpips_params(net: str, lin_path: str, backbone_path: str) -> Params:
  """Reads LPIPS weights (torch `.pth` files, read without torch).

  Args:
    net: 'alex' or 'vgg'.
    lin_path: linear heads, a state dict with `lin{k}.model.1.weight` `[1, C_k, 1, 1]`, k < 5
      (other entries are ignored).
    backbone_path: torchvision `alexnet` / `vgg16` state dict (`features.{i}.weight`, ...).

  Returns:
    {'backbone': {conv: {'kernel' `[k, k, in, out]`, 'bias' `[out]`}}, 'lin': {'lin{k}':
    `[C_k]`}}, float32 numpy.

  Raises:
    ValueError: unknown `net`, or weights missing or of the wrong shape.
  """
  arch, taps, _, _ = _check_net(net)
  backbone, _ = vgg.load_torchvision_pth(backbone_path, arch)
  spec = vgg.get_arch(arch)
  channels = {conv[0]: conv[2] for conv in spec.convs}
  state = torch_io.load_state_dict(lin_path)
  lin = {}
  for k, tap in enumerate(taps):
    # A tap's channels are those of the last conv before it.
    conv = [name for name in spec.layers[:spec.layers.index(tap)] if name.startswith("conv")][-1]
    key, shape = f"lin{k}.model.1.weight", (1, channels[conv], 1, 1)
    weight = state.get(key) if isinstance(state, dict) else None
    if weight is None or weight.shape != shape:
      raise ValueError(f"LPIPS-{net} linear-head file {lin_path!r}: {key} is "
                       f"{'missing' if weight is None else weight.shape}, expected {shape}")
    lin[f"lin{k}"] = np.asarray(weight, np.float32).reshape(-1)
  return {"backbone": backbone, "lin": lin}


def _unit_normalize(f: jax.Array) -> jax.Array:
  """`lpips.normalize_tensor` over the channels of `[B, h, w, C]`."""
  return f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + EPS)


def make_lpips_fn(net: str, params: Params) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """A jitted LPIPS distance with the given weights.

  Args:
    net: 'alex' or 'vgg'.
    params: from `load_lpips_params`; copied to the device once, here, and passed to the
      compiled function as arguments (not embedded in the program).

  Returns:
    `fn(x, y)`: x, y RGB `[B, H, W, 3]` float in [0, 1], H, W >= 31 (alex) or 16 (vgg) ->
    `[B]` float32 distances >= 0, 0 for identical images. Differentiable in x and y.
  """
  arch, taps, _, min_size = _check_net(net)
  model = vgg.TorchvisionFeatures(taps, arch)
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
  shift, scale = jnp.asarray(SHIFT, jnp.float32), jnp.asarray(SCALE, jnp.float32)

  def features(backbone, x):
    if x.ndim != 4 or x.shape[-1] != 3 or min(x.shape[1:3]) < min_size:
      raise ValueError(f"LPIPS-{net} expects RGB images [B, H, W, 3] with H, W >= "
                       f"{min_size}, got shape {x.shape}")
    z = x.astype(jnp.float32) * 2.0 - 1.0
    return model.apply({"params": backbone}, (z - shift) / scale)

  @jax.jit
  def distance(params, x, y):
    if x.shape != y.shape:
      raise ValueError(f"LPIPS of images of different shapes {x.shape} and {y.shape}")
    feats = features(params["backbone"], jnp.concatenate([x, y]))  # One pass over [x; y].
    terms = []
    for k, tap in enumerate(taps):
      fx, fy = jnp.split(_unit_normalize(feats[tap]), 2)
      terms.append(jnp.mean(jnp.square(fx - fy) @ params["lin"][f"lin{k}"], axis=(1, 2)))
    # XLA:CPU may sum the squares of equal features (of equal images) in different orders at
    # different batch positions, giving ~1e-16 instead of 0: identical images get exactly 0.
    return jnp.where(jnp.all(x == y, axis=(1, 2, 3)), 0.0, sum(terms))

  return lambda x, y: distance(params, x, y)
