"""Writes lpips_golden.npz: LPIPS distances computed by the `lpips` package (needs torch).

Not run by the tests (torch is not a dependency); documents how the committed files were made:
  /work/torchvenv/bin/pip install lpips "torchvision<0.29"   # torchvision matching torch 2.13
  /work/torchvenv/bin/python tests/data/make_lpips_golden.py
Made with torch 2.13.0 (CPU), torchvision 0.28.0, lpips 0.1.4.

For each net ('alex', 'vgg') the script runs `lpips.LPIPS(net=net, pnet_rand=True,
model_path=<lin file>)(x, y, normalize=True)`, in eval mode, with
* backbone: the random torchvision-layout state dict `random_backbone_state(net)` (numpy
  RandomState, He-scaled normal kernels, small uniform biases) loaded into the package's
  `net.sliceK` modules. The files would be too big to commit (AlexNet ~10 MB, VGG16 ~60 MB),
  so tests/test_lpips.py imports this module (torch is imported in `main` only) and rebuilds
  them.
* linear heads: the package's real `weights/v0.1/{net}.pth`, copied here as
  `lpips_v0.1_{net}.pth` (BSD-2-Clause, see LICENSE_lpips.txt).
Images (`images()`, uint8, read as x / 255 in float32): a 64x64 batch (an identical pair, a
slightly noisy pair, an unrelated pair) and a 48x80 batch (a slightly and a strongly noisy pair).

npz keys: '{H}x{W}/x', '{H}x{W}/y' uint8 `[B, H, W, 3]`; '{net}/{H}x{W}' float32 `[B]`
distances; '{net}/{H}x{W}/layers' float32 `[5, B]` per-layer terms.
"""

import importlib.metadata
import os
import shutil

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
NETS = ("alex", "vgg")
SEED = 1234

# (torchvision `features` index, out, in, kernel) of each conv.
_CONVS = {
    "alex": ((0, 64, 3, 11), (3, 192, 64, 5), (6, 384, 192, 3), (8, 256, 384, 3),
             (10, 256, 256, 3)),
    "vgg": ((0, 64, 3, 3), (2, 64, 64, 3), (5, 128, 64, 3), (7, 128, 128, 3),
            (10, 256, 128, 3), (12, 256, 256, 3), (14, 256, 256, 3), (17, 512, 256, 3),
            (19, 512, 512, 3), (21, 512, 512, 3), (24, 512, 512, 3), (26, 512, 512, 3),
            (28, 512, 512, 3)),
}


def random_backbone_state(net: str, seed: int = SEED) -> dict:
  """Random torchvision `alexnet` / `vgg16` features weights {'features.{i}.weight'
  `[out, in, k, k]`, 'features.{i}.bias' `[out]`} float32 numpy, deterministic in `seed`."""
  rs = np.random.RandomState(seed)
  state = {}
  for index, out, cin, k in _CONVS[net]:
    std = np.sqrt(2.0 / (cin * k * k))
    state[f"features.{index}.weight"] = (rs.standard_normal((out, cin, k, k)) * std).astype(
        np.float32)
    state[f"features.{index}.bias"] = rs.uniform(-0.1, 0.1, out).astype(np.float32)
  return state


def images() -> dict:
  """{'HxW': (x, y)} uint8 `[B, H, W, 3]` image pairs (see the module docstring)."""
  rs = np.random.RandomState(SEED + 1)
  noisy = lambda x, sigma: np.clip(x + rs.normal(0, sigma, x.shape), 0, 255).round().astype(
      np.uint8)
  x = rs.randint(0, 256, (3, 64, 64, 3)).astype(np.uint8)
  y = np.stack([x[0], noisy(x[1], 8.0), rs.randint(0, 256, (64, 64, 3)).astype(np.uint8)])
  pairs = {"64x64": (x, y)}
  x = rs.randint(0, 256, (2, 48, 80, 3)).astype(np.uint8)
  pairs["48x80"] = (x, np.stack([noisy(x[0], 4.0), noisy(x[1], 40.0)]))
  return pairs


def _import_lpips():
  """Imports `lpips`, even where torchvision's C++ ops cannot load (here: PyPI's CUDA build
  of torchvision next to CPU-only torch). torchvision then fails registering a fake kernel
  for its undefined `torchvision::nms` op; such registrations are skipped, as LPIPS needs only
  `torchvision.models`."""
  import torch  # pylint: disable=g-import-not-at-top

  register_fake = torch.library.register_fake

  def lenient_register_fake(op, func=None, **kwargs):
    def register(fn):
      try:
        return register_fake(op, fn, **kwargs)
      except RuntimeError:  # The op is not defined.
        return fn
    return register if func is None else register(func)

  torch.library.register_fake = lenient_register_fake
  try:
    import lpips  # pylint: disable=g-import-not-at-top
  finally:
    torch.library.register_fake = register_fake
  return lpips


def main():
  import torch  # pylint: disable=g-import-not-at-top

  lpips = _import_lpips()
  package_weights = os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1")
  with open(os.path.join(HERE, "LICENSE_lpips.txt"), "w") as f:
    f.write(importlib.metadata.distribution("lpips").read_text("LICENSE"))
  pairs = images()
  out = {}
  for shape, (x, y) in pairs.items():
    out[f"{shape}/x"], out[f"{shape}/y"] = x, y
  for net in NETS:
    lin_file = os.path.join(HERE, f"lpips_v0.1_{net}.pth")
    shutil.copy(os.path.join(package_weights, f"{net}.pth"), lin_file)
    model = lpips.LPIPS(net=net, pnet_rand=True, model_path=lin_file, verbose=False).eval()
    # The package's slices hold torchvision's `features.{i}` modules under their own index.
    backbone = {}
    for slice_name, module in model.net.named_children():
      for index, layer in module.named_children():
        for leaf, value in layer.named_parameters():
          backbone[f"features.{index}.{leaf}"] = f"net.{slice_name}.{index}.{leaf}"
    state = random_backbone_state(net)
    assert sorted(backbone) == sorted(state), (sorted(backbone), sorted(state))
    missing = model.load_state_dict(
        {backbone[k]: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    assert not missing.unexpected_keys, missing
    for shape, (x, y) in pairs.items():
      to_torch = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255.0
      with torch.no_grad():
        d, layers = model(to_torch(x), to_torch(y), retPerLayer=True, normalize=True)
      out[f"{net}/{shape}"] = d.reshape(-1).numpy().astype(np.float32)
      out[f"{net}/{shape}/layers"] = np.stack(
          [r.reshape(-1).numpy() for r in layers]).astype(np.float32)
      print(net, shape, out[f"{net}/{shape}"])
  np.savez_compressed(os.path.join(HERE, "lpips_golden.npz"), **out)


if __name__ == "__main__":
  main()
