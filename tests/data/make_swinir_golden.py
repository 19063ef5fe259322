"""Writes tests/data/swinir/<name>.pth (tiny BasicSR SwinIR models with seeded random weights)
and tests/data/swinir_golden.npz (their inputs and PyTorch outputs, plus the parameter counts of
the full-size released SwinIR configurations), as golden vectors for jaxsr's SwinIR.

Not run by the tests (torch is not a dependency of jaxsr); documents how the committed files were
made:
  python -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
  /tmp/torchvenv/bin/pip install --no-deps --no-build-isolation basicsr==1.4.2 realesrgan==0.3.0
  /tmp/torchvenv/bin/python tests/data/make_swinir_golden.py
Made with torch 2.13.0+cpu, numpy 2.4.6, basicsr 1.4.2. The architecture is the package's own
`basicsr/archs/swinir_arch.py`, imported with stand-ins for the rest of the package (its
`__init__` needs cv2, torchvision, ...; `arch_util` imports torchvision and BasicSR's DCN ops,
which SwinIR does not use). One torch thread, fixed seeds: deterministic.

Models (VARIANTS): img_size=16, window_size=4, embed_dim=16, depths=(2, 2), num_heads=(2, 2),
mlp_ratio=2, qkv_bias=True, patch_norm=True, img_range=1, one per upsampler kind / residual
connection ('classical_x4' has three layers with 2, 4, 2 heads). After BasicSR's own init
(torch.manual_seed(seed)), every LayerNorm weight / bias, Linear bias and
relative_position_bias_table gets + 0.1 * N(0, 1), and every Linear weight (BasicSR draws them
with std 0.02, which leaves q.k near 0 and the attention almost uniform) is redrawn with std
1 / sqrt(fan_in), so that mapping bugs (head split, q / k / v order, bias table indexing) change
the output clearly. Conv weights keep torch's default init.

tests/data/swinir/<name>.pth: torch.save of {'params': sd} ({'params_ema': sd} for 'light_x4'
and 'real_x4'), sd = model.state_dict() as is: parameters plus the buffers
`...attn.relative_position_index` (int64, every block) and `...attn_mask` (float32, only the
shifted blocks, i.e. odd block index; registered as None, hence absent, in the others). The
RGB mean is a plain attribute, not in the state dict.

tests/data/swinir_golden.npz:
  '<name>/input_<i>'   float32 NHWC [B, H, W, 3] in [0, 1]; i = 0, 1, 2 with (B, H, W) =
                       (1, 13, 10), (2, 9, 17), (1, 16, 12) (the same three for every model).
  '<name>/output_<i>'  float32 NHWC [B, H * s, W * s, 3]: the model run as the official SwinIR
                       test code does (`check_image_size`): input reflect-padded at the bottom /
                       right to a multiple of window_size (F.pad(x, (0, pw, 0, ph), 'reflect'),
                       pad = (window - size % window) % window), forward, output cropped to
                       [:H * s, :W * s]. None of the padded sizes is img_size x img_size, so every
                       shifted block recomputes its mask (calculate_mask) rather than using the
                       stored attn_mask.
  'counts/<label>'     int64 scalar: sum(p.numel() for p in model.parameters()) (buffers
                       excluded) of BasicSR's SwinIR built with img_size=64 in the released
                       configurations (FULL_SIZE; EXPECTED_COUNTS are the known values).
"""

import importlib
import importlib.util
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_basicsr_golden  # noqa: E402  (its stand-ins for the rest of basicsr)
OUT_DIR = os.path.join(HERE, "swinir")
NPZ_PATH = os.path.join(HERE, "swinir_golden.npz")

WINDOW = 4
SMALL = dict(img_size=16, window_size=WINDOW, embed_dim=16, depths=(2, 2), num_heads=(2, 2),
             mlp_ratio=2, qkv_bias=True, img_range=1.0)

# name: (kwargs over SMALL, state-dict layout).
VARIANTS = {
    "classical_x2": (dict(upscale=2, upsampler="pixelshuffle", resi_connection="1conv"),
                     "params"),
    "classical_x3": (dict(upscale=3, upsampler="pixelshuffle", resi_connection="1conv"),
                     "params"),
    "classical_x4": (dict(upscale=4, upsampler="pixelshuffle", resi_connection="1conv",
                          depths=(2, 2, 2), num_heads=(2, 4, 2)), "params"),
    "light_x4": (dict(upscale=4, upsampler="pixelshuffledirect", resi_connection="1conv"),
                 "params_ema"),
    "real_x4": (dict(upscale=4, upsampler="nearest+conv", resi_connection="1conv"),
                "params_ema"),
    "real_x4_3conv": (dict(upscale=4, upsampler="nearest+conv", resi_connection="3conv"),
                      "params"),
    "denoise_x1": (dict(upscale=1, upsampler="", resi_connection="1conv"), "params"),
}

INPUT_SHAPES = ((1, 13, 10), (2, 9, 17), (1, 16, 12))  # (B, H, W)
INPUT_SEED = 1234

_CLASSICAL = dict(img_size=64, embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, window_size=8,
                  mlp_ratio=2, upsampler="pixelshuffle", resi_connection="1conv")
FULL_SIZE = {
    "classical_x4": dict(_CLASSICAL, upscale=4),
    "classical_x2": dict(_CLASSICAL, upscale=2),
    "light_x4": dict(img_size=64, embed_dim=60, depths=(6,) * 4, num_heads=(6,) * 4,
                     window_size=8, mlp_ratio=2, upsampler="pixelshuffledirect",
                     resi_connection="1conv", upscale=4),
    "real_m_x4": dict(_CLASSICAL, upscale=4, upsampler="nearest+conv"),
    "real_l_x4": dict(img_size=64, embed_dim=240, depths=(6,) * 9, num_heads=(8,) * 9,
                      window_size=8, mlp_ratio=2, upsampler="nearest+conv",
                      resi_connection="3conv", upscale=4),
}
EXPECTED_COUNTS = {"classical_x4": 11_900_199, "classical_x2": 11_752_487, "light_x4": 929_628,
                   "real_m_x4": 11_715_559, "real_l_x4": 28_013_059}


def perturb(model: torch.nn.Module, generator: torch.Generator) -> None:
  """Moves the params BasicSR inits to constants off them (see the module docstring)."""
  noise = lambda t: t.add_(0.1 * torch.randn(t.shape, generator=generator))
  with torch.no_grad():
    for sub in model.modules():
      if isinstance(sub, torch.nn.LayerNorm):
        noise(sub.weight)
        noise(sub.bias)
      elif isinstance(sub, torch.nn.Linear):
        sub.weight.copy_(torch.randn(sub.weight.shape, generator=generator)
                         * sub.weight.shape[1] ** -0.5)
        if sub.bias is not None:
          noise(sub.bias)
      if hasattr(sub, "relative_position_bias_table"):
        noise(sub.relative_position_bias_table)


def run_padded(model, x, upscale):
  """The official SwinIR test: reflect-pad to a multiple of the window, forward, crop."""
  _, _, h, w = x.shape
  pad_h = (WINDOW - h % WINDOW) % WINDOW
  pad_w = (WINDOW - w % WINDOW) % WINDOW
  x = F.pad(x, (0, pad_w, 0, pad_h), "reflect")
  with torch.no_grad():
    out = model(x)
  return out[:, :, :h * upscale, :w * upscale]


def main():
  torch.set_num_threads(1)
  make_basicsr_golden._stub_packages()  # pylint: disable=protected-access
  swinir_cls = importlib.import_module("basicsr.archs.swinir_arch").SwinIR
  os.makedirs(OUT_DIR, exist_ok=True)
  arrays = {}

  generator = torch.Generator().manual_seed(INPUT_SEED)
  inputs = [torch.rand((b, 3, h, w), generator=generator) for b, h, w in INPUT_SHAPES]

  for seed, (name, (kwargs, layout)) in enumerate(VARIANTS.items()):
    kwargs = dict(SMALL, **kwargs)
    torch.manual_seed(seed)
    model = swinir_cls(**kwargs).eval()
    perturb(model, torch.Generator().manual_seed(100 + seed))
    torch.save({layout: model.state_dict()}, os.path.join(OUT_DIR, f"{name}.pth"))
    for i, x in enumerate(inputs):
      out = run_padded(model, x, kwargs["upscale"])
      assert out.shape[2:] == (x.shape[2] * kwargs["upscale"], x.shape[3] * kwargs["upscale"])
      arrays[f"{name}/input_{i}"] = x.permute(0, 2, 3, 1).numpy().astype(np.float32)
      arrays[f"{name}/output_{i}"] = out.permute(0, 2, 3, 1).numpy().astype(np.float32)
    print(f"{name}: {os.path.getsize(os.path.join(OUT_DIR, f'{name}.pth'))} bytes, "
          f"output range [{min(arrays[f'{name}/output_{i}'].min() for i in range(3)):.3f}, "
          f"{max(arrays[f'{name}/output_{i}'].max() for i in range(3)):.3f}]")

  for label, kwargs in FULL_SIZE.items():
    torch.manual_seed(0)
    model = swinir_cls(**kwargs)
    count = sum(p.numel() for p in model.parameters())
    del model
    arrays[f"counts/{label}"] = np.array(count, dtype=np.int64)
    ok = "matches" if count == EXPECTED_COUNTS[label] else f"EXPECTED {EXPECTED_COUNTS[label]:,}"
    print(f"count {label}: {count:,} ({ok})")

  np.savez_compressed(NPZ_PATH, **arrays)
  print(f"Wrote {NPZ_PATH} ({os.path.getsize(NPZ_PATH)} bytes) and {len(VARIANTS)} files in "
        f"{OUT_DIR}")


if __name__ == "__main__":
  main()
