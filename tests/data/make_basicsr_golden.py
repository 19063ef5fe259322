"""Writes tests/data/basicsr/: tiny BasicSR / Real-ESRGAN models with seeded random weights as
`.pth` files, and each one's input and PyTorch output in `<name>.npz` (needs torch).

Not run by the tests (torch is not a dependency of jaxsr); documents how the committed files were
made:
  python -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
  /tmp/torchvenv/bin/pip install --no-deps --no-build-isolation basicsr==1.4.2 realesrgan==0.3.0
  /tmp/torchvenv/bin/python tests/data/make_basicsr_golden.py [name ...]
(names: write only those fixtures, each with its own seed as when all are written). Made with
torch 2.13.0 (CPU), basicsr 1.4.2, realesrgan 0.3.0. The architectures are the packages' own
arch files (`basicsr/archs/*_arch.py`, `realesrgan/archs/*_arch.py`), imported
with stand-ins for the rest of the packages (their `__init__` needs cv2, torchvision, ...).

Each `.pth` holds the state dict in one of the layouts BasicSR writes: {'params': sd},
{'params_ema': sd}, both (then 'params' holds other weights, so the output tells which was
read), or the bare sd. Every tensor is redrawn from a seeded normal (convs / linears with std
1/sqrt(fan_in), so activations stay of order 1; BatchNorm running statistics far from 0 / 1;
PReLU slopes in [0, 0.5]). A model with spectral norm (`weight_orig`, `weight_u`, `weight_v`)
then runs a few training-mode forwards (power iterations on u, v) and its `weight_orig` is
perturbed as by an optimizer step, so the stored u, v are neither their init nor singular vectors
of the final weights; its output is the eval-mode one (sigma = u^T W v, stored u and v).
`<name>.npz` holds `input` uint8 `[B, H, W, C]` (the model input is input / 255, NCHW in torch),
`output` float32 (`[B, H*s, W*s, C]` NHWC, `[B, H, W, 1]` per-pixel or `[B, 1]` logits) and
`hparams` (a JSON string of the constructor arguments, BasicSR names).
"""

import importlib
import importlib.util
import json
import logging
import os
import sys
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "basicsr")

# name: (module, class, constructor kwargs, state-dict layout, input (batch, H = W)).
FIXTURES = {
    "msrresnet_x4": ("basicsr.archs.srresnet_arch", "MSRResNet",
                     dict(num_in_ch=3, num_out_ch=3, num_feat=6, num_block=2, upscale=4),
                     "params", (1, 6)),
    "msrresnet_x3": ("basicsr.archs.srresnet_arch", "MSRResNet",
                     dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_block=1, upscale=3),
                     "both", (1, 6)),
    "edsr_x2": ("basicsr.archs.edsr_arch", "EDSR",
                dict(num_in_ch=3, num_out_ch=3, num_feat=6, num_block=2, upscale=2,
                     res_scale=1), "bare", (1, 6)),
    "rrdbnet_x4": ("basicsr.archs.rrdbnet_arch", "RRDBNet",
                   dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_block=1, num_grow_ch=3,
                        scale=4), "params_ema", (1, 6)),
    "rrdbnet_x2": ("basicsr.archs.rrdbnet_arch", "RRDBNet",
                   dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_block=2, num_grow_ch=2,
                        scale=2), "params", (1, 6)),
    "srvgg_x4": ("realesrgan.archs.srvgg_arch", "SRVGGNetCompact",
                 dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4,
                      act_type="prelu"), "params", (1, 6)),
    "vgg_discriminator": ("basicsr.archs.discriminator_arch", "VGGStyleDiscriminator",
                          dict(num_in_ch=3, num_feat=1, input_size=128), "params", (2, 128)),
    "unet_discriminator": ("realesrgan.archs.discriminator_arch", "UNetDiscriminatorSN",
                           dict(num_in_ch=3, num_feat=4, skip_connection=True), "params",
                           (2, 32)),
}


def _stub_packages():
  """Makes `basicsr.archs.<x>_arch` and `realesrgan.archs.srvgg_arch` importable without
  running the packages' `__init__` files: package modules pointing at their folders, a registry
  whose `register()` is the identity, and stand-ins for what `arch_util` imports (torchvision
  and BasicSR's DCN ops, used only by deformable convolutions)."""
  def package(name, path):
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module
    return module

  for top in ("basicsr", "realesrgan"):
    root = importlib.util.find_spec(top).submodule_search_locations[0]
    package(top, root)
    package(f"{top}.archs", os.path.join(root, "archs"))
  registry = types.ModuleType("basicsr.utils.registry")
  registry.ARCH_REGISTRY = types.SimpleNamespace(register=lambda *a, **k: (lambda cls: cls))
  utils = types.ModuleType("basicsr.utils")
  utils.get_root_logger = logging.getLogger
  dcn = types.ModuleType("basicsr.ops.dcn")
  dcn.ModulatedDeformConvPack, dcn.modulated_deform_conv = torch.nn.Module, None
  sys.modules.update({"basicsr.utils": utils, "basicsr.utils.registry": registry,
                      "basicsr.ops": types.ModuleType("basicsr.ops"), "basicsr.ops.dcn": dcn})
  sys.modules["torchvision"] = types.ModuleType("torchvision")  # Only used by DCN layers.


def randomize(module: torch.nn.Module, generator: torch.Generator) -> None:
  """Redraws every parameter and BatchNorm statistic (see the module docstring)."""
  normal = lambda t, std, mean=0.0: t.copy_(
      mean + std * torch.randn(t.shape, generator=generator))
  uniform = lambda t, low, high: t.copy_(low + (high - low) * torch.rand(t.shape,
                                                                        generator=generator))
  with torch.no_grad():
    for sub in module.modules():
      if isinstance(sub, (torch.nn.Conv2d, torch.nn.Linear)):
        weight = getattr(sub, "weight_orig", sub.weight)  # The parameter under spectral norm.
        normal(weight, weight[0].numel() ** -0.5)
        if sub.bias is not None:
          normal(sub.bias, 0.1)
      elif isinstance(sub, torch.nn.BatchNorm2d):
        uniform(sub.weight, 0.5, 1.5)
        normal(sub.bias, 0.1)
        normal(sub.running_mean, 0.3)
        uniform(sub.running_var, 0.5, 2.0)
        sub.num_batches_tracked.fill_(1000)
      elif isinstance(sub, torch.nn.PReLU):
        uniform(sub.weight, 0.0, 0.5)


def train_spectral_norm(net: torch.nn.Module, generator: torch.Generator, input_shape,
                        num_in_ch: int, forwards: int = 3) -> None:
  """Training-mode forwards on random inputs (each one power iteration on every u, v), then a
  small perturbation of every `weight_orig` (an optimizer step after the last forward)."""
  batch, size = input_shape
  net.train()
  with torch.no_grad():
    for _ in range(forwards):
      net(torch.rand((batch, num_in_ch, size, size), generator=generator))
    for name, param in net.named_parameters():
      if name.endswith("weight_orig"):
        param.add_(0.05 * param.std() * torch.randn(param.shape, generator=generator))
  net.eval()


def make(name, module_name, class_name, kwargs, layout, input_shape, seed):
  cls = getattr(importlib.import_module(module_name), class_name)
  torch.manual_seed(seed)  # spectral_norm draws its initial u, v from the global generator.
  generator = torch.Generator().manual_seed(seed)
  net = cls(**kwargs).eval()
  randomize(net, generator)
  if any(key.endswith("weight_u") for key in net.state_dict()):
    train_spectral_norm(net, generator, input_shape, kwargs["num_in_ch"])
  batch, size = input_shape
  block = 8 if size >= 64 else 1  # 8x8 blocks compress well (the discriminator's 128x128).
  image = torch.randint(0, 256, (batch, size // block, size // block, kwargs["num_in_ch"]),
                        generator=generator, dtype=torch.uint8)
  image = image.repeat_interleave(block, 1).repeat_interleave(block, 2)
  with torch.no_grad():
    out = net(image.permute(0, 3, 1, 2).float() / 255.0)
  if out.ndim == 4:
    out = out.permute(0, 2, 3, 1)
  state = net.state_dict()
  if layout == "bare":
    saved = state
  elif layout == "both":
    other = cls(**kwargs)
    randomize(other, generator)
    saved = {"params": other.state_dict(), "params_ema": state}
  else:
    saved = {layout: state}
  torch.save(saved, os.path.join(OUT_DIR, f"{name}.pth"))
  np.savez_compressed(os.path.join(OUT_DIR, f"{name}.npz"), input=image.numpy(),
                      output=out.numpy().astype(np.float32), hparams=json.dumps(kwargs))


def main(names):
  unknown = sorted(set(names) - set(FIXTURES))
  if unknown:
    sys.exit(f"Unknown fixtures {unknown}; have {sorted(FIXTURES)}")
  _stub_packages()
  os.makedirs(OUT_DIR, exist_ok=True)
  for seed, (name, spec) in enumerate(FIXTURES.items()):
    if not names or name in names:
      make(name, *spec, seed=seed)
  total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR))
  print(f"Wrote {len(names or FIXTURES)} fixtures; {total / 1024:.0f} KiB in {OUT_DIR}")


if __name__ == "__main__":
  main(sys.argv[1:])
