"""Writes tests/data/esrgan_golden.npz: RRDBNet (OpenModelDB's "ESRGAN") state dicts in the
original ESRGAN repository's layout, made by spandrel 0.4.2's own module, with their inputs,
outputs and what spandrel detects from them; and tests/data/compact_x2.safetensors, a tiny
SRVGGNetCompact ("Compact") state dict written by the `safetensors` package.

Not run by the tests (torch and spandrel are not dependencies of jaxsr); documents how the
committed files were made:
  python -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install torch torchvision numpy \
      spandrel==0.4.2 safetensors
  /tmp/benchvenv/bin/python tests/data/make_esrgan_golden.py
Made with torch 2.14.1, spandrel 0.4.2, safetensors 0.8.0, numpy 2.4. One torch thread, fixed
seeds: deterministic.

Variants (VARIANTS): spandrel's `ESRGAN` (= `spandrel.architectures.ESRGAN.__arch.RRDB.RRDBNet`,
the old `model.<i>` keys) with num_filters 8, num_blocks 2 (its growth channels are fixed at
32), scale 1, 2, 4, 8 without pixel-unshuffle, and the Real-ESRGAN x2 / x1 style
(shuffle_factor 2 / 4 in front of a x4 trunk, in_nc 12 / 48). Weights are not stored (the
fixed growth channels make them megabytes): `weights(keys, shapes, seed)` below draws them with
numpy, and the test draws the same: for each key in state-dict order, N(0, 1) / sqrt(fan_in)
(fan_in = in * kh * kw) for a conv weight, 0.1 * N(0, 1) for a bias, from
`np.random.default_rng(seed)`, float32.

esrgan_golden.npz:
  '<name>/keys'       JSON list of [key, shape] in state-dict order.
  '<name>/seed'       the weights' seed.
  '<name>/detected'   JSON of what `spandrel.ModelLoader().load_from_state_dict(sd)` reports:
                      architecture id, scale, input / output channels, size multiple.
  '<name>/input'      float32 NHWC [1, 11, 13, 3] in [0, 1] (odd sizes: the unshuffle variants
                      pad them, reflect, as spandrel's forward does).
  '<name>/output'     float32 NHWC: `descriptor.model(x)` (spandrel's module forward).
"""

import json
import os

import numpy as np
import safetensors.torch
import spandrel
import torch
from spandrel.architectures.Compact import Compact
from spandrel.architectures.ESRGAN import ESRGAN

HERE = os.path.dirname(os.path.abspath(__file__))
# name -> spandrel ESRGAN kwargs
VARIANTS = {
    "old_x1": dict(scale=1), "old_x2": dict(scale=2), "old_x4": dict(scale=4),
    "old_x8": dict(scale=8),
    "old_unshuffle_x2": dict(scale=4, shuffle_factor=2, in_nc=12),
    "old_unshuffle_x1": dict(scale=4, shuffle_factor=4, in_nc=48),
}


def weights(keys_and_shapes, seed):
  """The state dict's values: see the module docstring (the test has the same function)."""
  rng = np.random.default_rng(seed)
  out = {}
  for key, shape in keys_and_shapes:
    if key.endswith("weight"):
      out[key] = (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
    else:
      out[key] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
  return out


def main():
  torch.set_num_threads(1)
  out = {}
  for index, (name, kwargs) in enumerate(VARIANTS.items()):
    model = ESRGAN(**{"in_nc": 3, "out_nc": 3, "num_filters": 8, "num_blocks": 2, **kwargs})
    keys = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    sd = {k: torch.from_numpy(v) for k, v in weights(keys, 100 + index).items()}
    model.load_state_dict(sd)
    model.eval()
    descriptor = spandrel.ModelLoader().load_from_state_dict(sd)
    detected = {"architecture": descriptor.architecture.id, "scale": descriptor.scale,
                "input_channels": descriptor.input_channels,
                "output_channels": descriptor.output_channels,
                "multiple_of": descriptor.size_requirements.multiple_of}
    x = torch.from_numpy(np.random.default_rng(index).random((1, 3, 11, 13), np.float32))
    with torch.no_grad():
      y = descriptor.model.eval()(x)
    out[f"{name}/keys"] = np.array(json.dumps(keys))
    out[f"{name}/seed"] = np.array(100 + index)
    out[f"{name}/detected"] = np.array(json.dumps(detected))
    out[f"{name}/input"] = x.numpy().transpose(0, 2, 3, 1)
    out[f"{name}/output"] = y.numpy().transpose(0, 2, 3, 1)
    print(name, detected, tuple(y.shape))
  np.savez_compressed(os.path.join(HERE, "esrgan_golden.npz"), **out)
  torch.manual_seed(0)
  compact = Compact(num_in_ch=3, num_out_ch=3, num_feat=4, num_conv=2, upscale=2)
  safetensors.torch.save_file(compact.state_dict(), os.path.join(HERE, "compact_x2.safetensors"))


if __name__ == "__main__":
  main()
