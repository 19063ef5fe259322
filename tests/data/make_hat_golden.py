"""Writes tests/data/hat_golden.npz: tiny HAT models with seeded random weights (their state
dicts), inputs and PyTorch outputs, plus the parameter counts of the released configurations,
as golden vectors for jaxsr's HAT (jaxsr/models/hat.py, jaxsr/interop/families/hat.py).

Not run by the tests (torch is not a dependency of jaxsr); documents how the committed file was
made, in a venv with torch and spandrel:
  /tmp/benchvenv/bin/python tests/data/make_hat_golden.py
Made with torch 2.14.1 (CPU), numpy, spandrel 0.4.2. The architecture is spandrel's copy of the
official `hat/archs/hat_arch.py` (`spandrel.architectures.HAT.__arch.HAT.HAT`), built directly.
One torch thread, fixed seeds: deterministic.

Models (VARIANTS, over SMALL): window_size 4 (8 for 'x1_gray'), img_size 64 (only ape and the
window clamp for windows >= img_size would use it; neither applies), num_feat 8, conv_scale 0.01,
img_range 1. HAT-S-like models have compress_ratio = squeeze_factor = 24 (embed_dim 24: CAB and
channel attention 1 channel), HAT-like ones compress_ratio 3, squeeze_factor 30 (embed_dim 30:
10 and 1). Layout variants: 'x1_gray' (1 channel, no mean, scale 1, resi_connection
'identity', no patch norm, no qkv bias, window 8 with overlap_ratio 0.25, compress_ratio 6,
squeeze_factor 12), 'm_x4' (overlap_ratio 1: the key windows span two query windows, mlp_ratio
1.5), 'x8'; 's_x2' has two RHAGs (2 and 3 heads) and a batch of 2. After the official init
(torch.manual_seed), every LayerNorm weight / bias and Linear bias gets + 0.1 * N(0, 1), every
relative position bias table + 0.5 * N(0, 1), and every Linear weight (drawn with std 0.02,
which leaves q.k near 0 and the attention almost uniform) is redrawn with std 1 / sqrt(fan_in),
so that mapping bugs (head split, q / k / v order, bias indexing, unfold order) change the
output clearly. Conv weights keep torch's default init. Then each parameter tensor is rounded to
2^LEVEL_BITS levels per sign (multiples of a power of 2 near max |p| / 16): the model computes
with these values in float32; stored as float16, which holds them exactly, the state dicts
compress to about a byte per value (the file stays under 400 KB).

tests/data/hat_golden.npz:
  '<name>/sd/<key>'   model.state_dict(): parameters (float16, their exact values) and the buffers
                      relative_position_index_SA `[w^2, w^2]` and relative_position_index_OCA
                      `[w^2, ow^2]` (int64).
  '<name>/hparams'    JSON of the jaxsr `HAT` kwargs (with 'scale') that `detect` must return.
  '<name>/input'      float32 NHWC `[B, H, W, C]` in [0, 1]; (B, H, W) from INPUT_SHAPES.
  '<name>/output'     float32 NHWC `[B, H * s, W * s, C]`: model(x) in eval mode, not clamped.
                      HAT's forward is the official test: reflect-pad the bottom / right to a
                      multiple of the window (`check_image_size`), run, crop. (spandrel's
                      descriptor would first pad to 16 pixels, its minimum size; with the released
                      window 16 that is the same padding for sizes >= 9.)
  'counts/<label>'    int64: sum(p.numel() for p in model.parameters()) (buffers excluded) of the
                      released x4 configurations (FULL_SIZE, the official options/test/*.yml).
"""

import json
import math
import os

import numpy as np
import torch

from spandrel.architectures.HAT.__arch.HAT import HAT

HERE = os.path.dirname(os.path.abspath(__file__))
NPZ_PATH = os.path.join(HERE, "hat_golden.npz")

SMALL = dict(img_size=64, in_chans=3, window_size=4, overlap_ratio=0.5, mlp_ratio=2.0,
             qkv_bias=True, patch_norm=True, conv_scale=0.01, img_range=1.0,
             upsampler="pixelshuffle", resi_connection="1conv", num_feat=8)
HAT_S_LIKE = dict(embed_dim=24, compress_ratio=24, squeeze_factor=24)
HAT_LIKE = dict(embed_dim=30, compress_ratio=3, squeeze_factor=30)

VARIANTS = {
    "s_x2": dict(HAT_S_LIKE, upscale=2, depths=(2, 2), num_heads=(2, 3)),
    "m_x3": dict(HAT_LIKE, upscale=3, depths=(2,), num_heads=(3,)),
    "m_x4": dict(HAT_LIKE, upscale=4, depths=(2,), num_heads=(2,), overlap_ratio=1.0,
                 mlp_ratio=1.5),
    "x1_gray": dict(HAT_S_LIKE, upscale=1, in_chans=1, depths=(2,), num_heads=(2,),
                    window_size=8, overlap_ratio=0.25, compress_ratio=6, squeeze_factor=12,
                    qkv_bias=False, patch_norm=False, resi_connection="identity"),
    "x8": dict(HAT_S_LIKE, upscale=8, depths=(1,), num_heads=(2,)),
}
# (B, H, W) of each model's input: odd sizes, none a multiple of the window.
INPUT_SHAPES = {"s_x2": (2, 5, 6), "m_x3": (1, 9, 7), "m_x4": (1, 7, 10), "x1_gray": (1, 11, 6),
                "x8": (1, 3, 5)}
INPUT_SEED = 1234
# Each parameter tensor is rounded to 2^LEVEL_BITS levels per sign (multiples of a power of 2):
# float32 values exactly, that compress to about a byte each.
LEVEL_BITS = 4

_RELEASED = dict(img_size=64, in_chans=3, window_size=16, compress_ratio=3, squeeze_factor=30,
                 conv_scale=0.01, overlap_ratio=0.5, img_range=1.0, embed_dim=180,
                 depths=(6,) * 6, num_heads=(6,) * 6, mlp_ratio=2.0, upsampler="pixelshuffle",
                 resi_connection="1conv", upscale=4)
FULL_SIZE = {
    "hat_s_x4": dict(_RELEASED, embed_dim=144, compress_ratio=24, squeeze_factor=24),
    "hat_x4": _RELEASED,
    "hat_l_x4": dict(_RELEASED, depths=(6,) * 12, num_heads=(6,) * 12),
}


def jaxsr_hparams(kwargs: dict) -> dict:
  """The jaxsr `HAT` kwargs of the spandrel kwargs (what `detect` must read off the weights)."""
  names = ("in_chans", "embed_dim", "window_size", "compress_ratio", "squeeze_factor",
           "overlap_ratio", "mlp_ratio", "qkv_bias", "patch_norm", "resi_connection", "num_feat")
  hparams = {k: kwargs[k] for k in names}
  return dict(hparams, scale=kwargs["upscale"], depths=list(kwargs["depths"]),
              num_heads=list(kwargs["num_heads"]))


def perturb(model: torch.nn.Module, generator: torch.Generator) -> None:
  """Moves the params off their inits (module docstring), then rounds them (LEVEL_BITS)."""
  noise = lambda t, std: t.add_(std * torch.randn(t.shape, generator=generator))
  with torch.no_grad():
    for sub in model.modules():
      if isinstance(sub, torch.nn.LayerNorm):
        noise(sub.weight, 0.1)
        noise(sub.bias, 0.1)
      elif isinstance(sub, torch.nn.Linear):
        sub.weight.copy_(torch.randn(sub.weight.shape, generator=generator)
                         * sub.weight.shape[1] ** -0.5)
        if sub.bias is not None:
          noise(sub.bias, 0.1)
      if hasattr(sub, "relative_position_bias_table"):
        noise(sub.relative_position_bias_table, 0.5)
    for p in model.parameters():
      step = 2.0 ** (math.ceil(math.log2(p.abs().max().item())) - LEVEL_BITS)
      p.copy_(torch.round(p / step) * step)


def main():
  torch.set_num_threads(1)
  arrays = {}
  generator = torch.Generator().manual_seed(INPUT_SEED)
  for seed, (name, overrides) in enumerate(VARIANTS.items()):
    kwargs = dict(SMALL, **overrides)
    torch.manual_seed(seed)
    model = HAT(**kwargs).eval()
    perturb(model, torch.Generator().manual_seed(100 + seed))
    for key, value in model.state_dict().items():
      value = value.numpy()
      # float16 holds the rounded values exactly (as a half-precision checkpoint would).
      arrays[f"{name}/sd/{key}"] = value.astype(np.float16) if value.dtype == np.float32 else value
      assert np.array_equal(arrays[f"{name}/sd/{key}"], value)
    arrays[f"{name}/hparams"] = np.array(json.dumps(jaxsr_hparams(kwargs), sort_keys=True))
    s, c = kwargs["upscale"], kwargs["in_chans"]
    b, h, w = INPUT_SHAPES[name]
    x = torch.rand((b, c, h, w), generator=generator)
    with torch.no_grad():
      out = model(x)
    assert out.shape == (b, c, h * s, w * s), out.shape
    arrays[f"{name}/input"] = x.permute(0, 2, 3, 1).numpy().astype(np.float32)
    arrays[f"{name}/output"] = out.permute(0, 2, 3, 1).numpy().astype(np.float32)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, output range "
          f"[{out.min():.3f}, {out.max():.3f}]")

  for label, kwargs in FULL_SIZE.items():
    model = HAT(**kwargs)
    arrays[f"counts/{label}"] = np.array(sum(p.numel() for p in model.parameters()), np.int64)
    print(f"count {label}: {int(arrays[f'counts/{label}']):,}")
    del model

  np.savez_compressed(NPZ_PATH, **arrays)
  print(f"Wrote {NPZ_PATH} ({os.path.getsize(NPZ_PATH)} bytes)")


if __name__ == "__main__":
  main()
