"""Writes tests/data/rcan_golden.npz: tiny RCANs built by spandrel 0.4.2's own
`spandrel/architectures/RCAN/__arch/rcan_arch.py` with seeded random weights, their inputs and
PyTorch outputs, and the parameter counts of the paper's RCAN, as golden vectors for jaxsr's
`models/rcan.py` and `interop/families/rcan.py`.

Not run by the tests (torch is not a dependency of jaxsr); documents how the committed file was
made:
  /tmp/benchvenv/bin/python tests/data/make_rcan_golden.py
Made with torch 2.14.1 (CPU), numpy, spandrel 0.4.2 (a venv with `pip install torch spandrel`).
One torch thread, fixed seeds: deterministic.

Models (VARIANTS): over SMALL (1 group x 2 RCABs, 4 features, reduction 2), one per scale
(x1 without upsampler, x2, x3, x4, x8) and per layout spandrel detects: the pixel-unshuffle
front end (x1: PixelUnshuffle(4), x2: PixelUnshuffle(2), both with a x4 tail), no mean shift
(norm=False, here with one color), a 5x5 kernel; 'x2_gelu_range1' uses options that are not in
the weights (act_mode='gelu', rgb_range=1). After spandrel's init (torch.manual_seed(seed)),
the channel-attention convs' weights are multiplied by 4 (so the sigmoid gates spread away from
1/2) and, where MEAN_SHIFT_NOISE says so, the mean shifts' weights get + 0.05 * N(0, 1) and
their biases + N(0, 1) (the official code trained them by accident, see jaxsr/models/rcan.py;
this also catches a transposed 1x1 kernel). Other convs keep torch's default init.

tests/data/rcan_golden.npz:
  '<name>/sd/<key>'    float32: model.state_dict() as is (PyTorch layouts and names; RCAN has
                       no buffers).
  '<name>/hparams'     JSON str: what `interop.families.rcan.detect(sd)` must return (the jaxsr
                       `RCAN` kwargs, spandrel's names; rgb_range 255 and act_mode 'relu', which
                       are not in the weights, as spandrel assumes).
  '<name>/overrides'   JSON str: kwargs over hparams that build the model the outputs are from
                       ({} unless the variant sets undetectable options).
  '<name>/input_<i>'   float32 NHWC [B, H, W, C] in [0, 1]; i = 0, 1 with (B, H, W) from
                       INPUT_SHAPES (SMALL_INPUT_SHAPES for x8).
  '<name>/output_<i>'  float32 NHWC [B, H * s, W * s, C]: model(x) as spandrel's
                       ImageModelDescriptor calls it (RCAN.forward reflect-pads to a multiple of
                       the unshuffle factor and crops itself; no clamp here).
  'counts/x<s>'        int64: sum(p.numel() for p in RCAN(scale=s).parameters()), the paper's
                       RCAN (10 groups x 20 RCABs, 64 features, reduction 16; mean shifts
                       included) at s = 2, 3, 4, 8.
"""

import json
import os

import numpy as np
import torch
from spandrel.architectures.RCAN import RCANArch
from spandrel.architectures.RCAN.__arch.rcan_arch import RCAN

HERE = os.path.dirname(os.path.abspath(__file__))
NPZ_PATH = os.path.join(HERE, "rcan_golden.npz")

SMALL = dict(n_resgroups=1, n_resblocks=2, n_feats=4, reduction=2)
# name: (kwargs over SMALL, kwargs spandrel cannot read from the weights).
VARIANTS = {
    "x1": (dict(scale=1), {}),
    "x1_unshuffle": (dict(scale=1, unshuffle_mod=True), {}),
    "x2": (dict(scale=2, n_resgroups=2, n_resblocks=2, n_feats=8, reduction=4), {}),
    "x2_unshuffle": (dict(scale=2, unshuffle_mod=True), {}),
    "x2_gelu_range1": (dict(scale=2), dict(act_mode="gelu", rgb_range=1)),
    "x3": (dict(scale=3), {}),
    "x3_k5": (dict(scale=3, kernel_size=5, reduction=4, n_resblocks=1), {}),
    "x4": (dict(scale=4, n_resgroups=3, n_resblocks=3), {}),
    "x4_gray_no_norm": (dict(scale=4, n_colors=1, norm=False), {}),
    "x8": (dict(scale=8, n_resgroups=1), {}),
}
MEAN_SHIFT_NOISE = ("x1_unshuffle", "x2_unshuffle", "x3", "x4", "x8")

INPUT_SHAPES = ((1, 7, 9), (2, 5, 6))  # (B, H, W)
SMALL_INPUT_SHAPES = ((1, 5, 3), (2, 3, 4))
INPUT_SEED = 1234

EXPECTED_COUNTS = {2: 15_444_667, 3: 15_629_307, 4: 15_592_379, 8: 15_740_091}


def perturb(model: RCAN, generator: torch.Generator, mean_shift: bool) -> None:
  """Spreads the attention gates and, with `mean_shift`, moves the mean shifts off their init."""
  with torch.no_grad():
    for name, param in model.named_parameters():
      if ".conv_du." in name and name.endswith("weight"):
        param.mul_(4.0)
      elif mean_shift and name.startswith(("sub_mean.", "add_mean.")):
        scale = 0.05 if name.endswith("weight") else 1.0
        param.add_(scale * torch.randn(param.shape, generator=generator))


def detected(kwargs: dict) -> dict:
  """The hparams `detect` returns for a model built with `kwargs` (SMALL's included)."""
  scale = kwargs["scale"]
  return dict(scale=scale, n_resgroups=kwargs["n_resgroups"],
              n_resblocks=kwargs["n_resblocks"], n_feats=kwargs["n_feats"],
              n_colors=kwargs.get("n_colors", 3), rgb_range=255.0,
              norm=kwargs.get("norm", True), kernel_size=kwargs.get("kernel_size", 3),
              reduction=kwargs["reduction"], act_mode="relu",
              unshuffle_mod=kwargs.get("unshuffle_mod", False) and scale <= 2)


def check_spandrel_detects(name: str, state_dict: dict, kwargs: dict) -> None:
  """Prints where spandrel's own detection differs from `kwargs` (it assumes n_feats=64 when
  there is no upsampler, i.e. x1 without unshuffle)."""
  try:
    found = RCANArch().load(state_dict).model.hyperparameters
  except Exception as e:  # pylint: disable=broad-except
    print(f"  spandrel cannot load {name}: {type(e).__name__}: {str(e)[:100]}")
    return
  differ = {k: (found.get(k), v) for k, v in kwargs.items()
            if k not in ("act_mode", "rgb_range") and found.get(k) != v}
  if differ:
    print(f"  spandrel reads {name} differently (found, built): {differ}")


def main():
  torch.set_num_threads(1)
  arrays = {}
  for seed, (name, (kwargs, undetectable)) in enumerate(VARIANTS.items()):
    kwargs = dict(SMALL, **kwargs)
    torch.manual_seed(seed)
    model = RCAN(**kwargs, **undetectable).eval()
    perturb(model, torch.Generator().manual_seed(100 + seed), name in MEAN_SHIFT_NOISE)
    state_dict = {k: v.detach().numpy().astype(np.float32)
                  for k, v in model.state_dict().items()}
    for key, value in state_dict.items():
      arrays[f"{name}/sd/{key}"] = value
    arrays[f"{name}/hparams"] = np.array(json.dumps(detected(kwargs)))
    arrays[f"{name}/overrides"] = np.array(json.dumps(
        {k: float(v) if k == "rgb_range" else v for k, v in undetectable.items()}))
    check_spandrel_detects(name, model.state_dict(), kwargs)

    generator = torch.Generator().manual_seed(INPUT_SEED + seed)
    colors, scale = kwargs.get("n_colors", 3), kwargs["scale"]
    shapes = SMALL_INPUT_SHAPES if scale == 8 else INPUT_SHAPES
    for i, (b, h, w) in enumerate(shapes):
      x = torch.rand((b, colors, h, w), generator=generator)
      with torch.no_grad():
        out = model(x.clone())  # forward scales its (unpadded) input in place.
      assert out.shape == (b, colors, h * scale, w * scale), out.shape
      arrays[f"{name}/input_{i}"] = x.permute(0, 2, 3, 1).numpy().astype(np.float32)
      arrays[f"{name}/output_{i}"] = out.permute(0, 2, 3, 1).numpy().astype(np.float32)
    outs = [arrays[f"{name}/output_{i}"] for i in range(len(shapes))]
    print(f"{name}: {sum(v.size for v in state_dict.values())} params, output range "
          f"[{min(o.min() for o in outs):.3f}, {max(o.max() for o in outs):.3f}]")

  for scale, expected in EXPECTED_COUNTS.items():
    count = sum(p.numel() for p in RCAN(scale=scale).parameters())
    arrays[f"counts/x{scale}"] = np.array(count, dtype=np.int64)
    print(f"count x{scale}: {count:,} ({'matches' if count == expected else 'EXPECTED'} "
          f"{expected:,})")

  np.savez_compressed(NPZ_PATH, **arrays)
  print(f"Wrote {NPZ_PATH} ({os.path.getsize(NPZ_PATH)} bytes)")


if __name__ == "__main__":
  main()
