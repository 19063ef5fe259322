"""Writes tests/data/omnisr_golden.npz: tiny spandrel OmniSR models with seeded random weights,
their inputs and PyTorch outputs, and the parameter counts of the released OmniSR
configurations, as golden vectors for jaxsr's OmniSR (jaxsr/models/omnisr.py).

Not run by the tests (torch is not a dependency of jaxsr); documents how the file was made:
  /tmp/benchvenv/bin/python tests/data/make_omnisr_golden.py
Made with torch 2.14.1 (CPU), numpy 2.4.6, einops 0.8.2, spandrel 0.4.2. The architecture is
spandrel's copy of the official Omni-SR code (`spandrel.architectures.OmniSR.__arch.OmniSR`,
built directly); spandrel's loader (`ModelLoader.load_from_state_dict`) re-reads each state
dict, and its hyper-parameters must equal the ones built. One torch thread, fixed seeds.

Models (VARIANTS, keyword arguments of spandrel's OmniSR): num_feat 8, window 4 unless said,
with per variant: a second OSA block (x3), a second OSAG without position bias or conv biases
at window 8 (x4: the window spandrel assumes when there is no bias table), 1 channel at window
2 (x1). After torch's init (torch.manual_seed(seed)), every LayerNorm / LayerNorm2d weight and
bias gets + 0.2 * N(0, 1), every channel-attention temperature is 1 + 0.5 * N(0, 1) (distinct
per head), the relative position tables keep their N(0, 1) init; convs and Linear layers keep
torch's default init. Then every parameter is rounded to float16 (and run as float32), so that
the state dicts are stored exactly in half the bytes (the file stays under 400 KB).

omnisr_golden.npz:
  '<name>/sd/<key>'   float16 (exactly the float32 values torch ran; cast before use):
                      model.state_dict() as is (parameters only: the index buffer
                      `rel_pos_indices` is not persistent), PyTorch layouts.
  '<name>/hparams'    JSON str: what jaxsr's `interop.families.omnisr.detect` must return
                      (spandrel's kwargs, `up_scale` as 'scale').
  '<name>/input_<i>'  float32 NHWC [B, H, W, C] in [0, 1] (INPUT_SHAPES[name]: odd sizes, some
                      under 16 on a side).
  '<name>/output_<i>' float32 NHWC [B, H * s, W * s, C]: the model run as spandrel's
                      ImageModelDescriptor runs it, without its final clamp: `pad_tensor` to
                      SizeRequirements(minimum=16) (bottom / right, reflect then replicate),
                      forward (which zero-pads to a multiple of the window and crops), output
                      cropped to [:H * s, :W * s].
  'counts/<label>'    int64: sum(p.numel() for p in model.parameters()) of the released
                      configurations (64 features, 5 OSAGs of 1 block, window 8, pe, bias) x2,
                      x3, x4.
  'counts/<label>_thop' int64: the same less the parameters the paper's counter (thop) skips
                      (nn.Embedding, LayerNorm2d, Channel_Attention temperatures): the paper's
                      772K / 780K / 792K.
"""

import json
import os

import numpy as np
import torch

from spandrel import ModelLoader
from spandrel.__helpers.size_req import pad_tensor  # pylint: disable=import-error
from spandrel.architectures.OmniSR.__arch.OmniSR import OmniSR
from spandrel.architectures.OmniSR.__arch.layernorm import LayerNorm2d
from spandrel.architectures.OmniSR.__arch.OSA import Channel_Attention, Channel_Attention_grid

HERE = os.path.dirname(os.path.abspath(__file__))
NPZ_PATH = os.path.join(HERE, "omnisr_golden.npz")

SMALL = dict(num_in_ch=3, num_out_ch=3, num_feat=8, block_num=1, pe=True, window_size=4,
             res_num=1, bias=True)
VARIANTS = {
    "x2": dict(up_scale=2),
    "x3": dict(up_scale=3, block_num=2),
    "x4": dict(up_scale=4, res_num=2, pe=False, bias=False, window_size=8),
    "x1": dict(up_scale=1, num_in_ch=1, num_out_ch=1, window_size=2),
}
# (B, H, W) per variant. Padded sizes (min 16, then the window) give H / window != W / window
# != window somewhere (block and grid windows differ) and ESA pools of more than 1 x 1 (a real
# bilinear upsampling) for the larger inputs; sizes under 16 take spandrel's reflect /
# replicate padding.
INPUT_SHAPES = {
    "x2": ((2, 5, 9), (1, 26, 29)),
    "x3": ((1, 17, 13),),
    "x4": ((1, 9, 17),),
    "x1": ((1, 31, 26),),
}
INPUT_SEED = 1234

FULL_SIZE = {f"released_x{s}": dict(num_feat=64, block_num=1, pe=True, window_size=8,
                                     res_num=5, bias=True, up_scale=s) for s in (2, 3, 4)}
PAPER_COUNTS_K = {"released_x2": 772, "released_x3": 780, "released_x4": 792}


def perturb(model: torch.nn.Module, generator: torch.Generator) -> None:
  """Moves the parameters torch inits to constants off them (see the module docstring)."""
  noise = lambda t, s: t.add_(s * torch.randn(t.shape, generator=generator))
  with torch.no_grad():
    for sub in model.modules():
      if isinstance(sub, (torch.nn.LayerNorm, LayerNorm2d)):
        noise(sub.weight, 0.2)
        noise(sub.bias, 0.2)
      elif isinstance(sub, (Channel_Attention, Channel_Attention_grid)):
        noise(sub.temperature, 0.5)
    for param in model.parameters():
      param.copy_(param.half().float())


def thop_count(model: torch.nn.Module) -> int:
  """Parameters less those of nn.Embedding, LayerNorm2d and the channel attentions' own
  `temperature` (modules thop has no counting hook for)."""
  skipped = 0
  for sub in model.modules():
    if isinstance(sub, (torch.nn.Embedding, LayerNorm2d)):
      skipped += sum(p.numel() for p in sub.parameters())
    elif isinstance(sub, (Channel_Attention, Channel_Attention_grid)):
      skipped += sub.temperature.numel()
  return sum(p.numel() for p in model.parameters()) - skipped


def run_as_spandrel(model, descriptor, x, scale):
  """spandrel's ImageModelDescriptor.__call__ without the clamp: pad, forward, crop."""
  _, _, h, w = x.shape
  _, padded = pad_tensor(x, descriptor.size_requirements)
  with torch.no_grad():
    out = model(padded)
  return out[:, :, :h * scale, :w * scale]


def main():
  torch.set_num_threads(1)
  arrays = {}
  for seed, (name, overrides) in enumerate(VARIANTS.items()):
    kwargs = dict(SMALL, **overrides)
    torch.manual_seed(seed)
    model = OmniSR(**kwargs).eval()
    perturb(model, torch.Generator().manual_seed(100 + seed))
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    descriptor = ModelLoader().load_from_state_dict(dict(sd))
    loaded = dict(descriptor.model.hyperparameters)
    assert loaded == kwargs, (name, loaded, kwargs)
    hparams = {("scale" if k == "up_scale" else k): v for k, v in kwargs.items()}
    arrays[f"{name}/hparams"] = np.array(json.dumps(hparams, sort_keys=True))
    for key, value in sd.items():
      half = value.numpy().astype(np.float16)
      assert np.array_equal(half.astype(np.float32), value.numpy())
      arrays[f"{name}/sd/{key}"] = half

    generator = torch.Generator().manual_seed(INPUT_SEED + seed)
    for i, (b, h, w) in enumerate(INPUT_SHAPES[name]):
      x = torch.rand((b, kwargs["num_in_ch"], h, w), generator=generator)
      out = run_as_spandrel(model, descriptor, x, kwargs["up_scale"])
      assert out.shape[2:] == (h * kwargs["up_scale"], w * kwargs["up_scale"])
      arrays[f"{name}/input_{i}"] = x.permute(0, 2, 3, 1).numpy().astype(np.float32)
      arrays[f"{name}/output_{i}"] = out.permute(0, 2, 3, 1).numpy().astype(np.float32)
    outs = [arrays[f"{name}/output_{i}"] for i in range(len(INPUT_SHAPES[name]))]
    print(f"{name}: {sum(v.numel() for v in sd.values())} params, output range "
          f"[{min(o.min() for o in outs):.3f}, {max(o.max() for o in outs):.3f}], "
          f"std {np.mean([o.std() for o in outs]):.3f}")

  for label, kwargs in FULL_SIZE.items():
    torch.manual_seed(0)
    model = OmniSR(**kwargs)
    count, thop = sum(p.numel() for p in model.parameters()), thop_count(model)
    arrays[f"counts/{label}"] = np.array(count, dtype=np.int64)
    arrays[f"counts/{label}_thop"] = np.array(thop, dtype=np.int64)
    ok = "matches" if round(thop / 1000) == PAPER_COUNTS_K[label] else "DIFFERS from"
    print(f"count {label}: {count:,}; without thop-skipped {thop:,} ({ok} the paper's "
          f"{PAPER_COUNTS_K[label]}K)")

  np.savez_compressed(NPZ_PATH, **arrays)
  print(f"Wrote {NPZ_PATH} ({os.path.getsize(NPZ_PATH)} bytes)")


if __name__ == "__main__":
  main()
