"""Writes tests/data/dat_golden.npz: tiny DAT models (spandrel 0.4.2's own architecture code,
with seeded random weights), their inputs and PyTorch outputs on odd sizes, one branch of the
spatial attention at a width where its position-bias MLP is not degenerate, and the parameter
counts of the released DAT configurations: golden vectors for jaxsr's DAT (jaxsr/models/dat.py).

Not run by the tests (torch is not a dependency of jaxsr); documents how the committed file was
made:
  /tmp/benchvenv/bin/python tests/data/make_dat_golden.py
Made with torch 2.14.1+cu130 (run on CPU), numpy 2.4.6, spandrel 0.4.2
(`spandrel.architectures.DAT.__arch.DAT`, imported directly). One torch thread, fixed seeds:
deterministic (rerunning it rewrites the same bytes).

Models (VARIANTS): embed_dim 32 (its position-bias MLP is embed_dim / 32 = 1 wide, 0 below
32; the spatial-attention golden below covers a 4-wide one), small depths, heads, windows and
expansion factors; 'x4' has a spatial, a channel and a shifted spatial block in two groups, the
others one block; they cover every scale's upsampler, 'pixelshuffledirect',
'1conv' ('x3') and '3conv', qkv_bias=False ('x3'), one channel ('x2'), split sizes (2, 4),
(4, 2), (2, 2), and img_size from a stored shift mask ('x4'). DAT fixes the 'pixelshuffle'
reconstruction width at 64; to keep the file small, those modules are rebuilt with spandrel's
own classes at num_feat=4 (conv_before_upsample = [Conv2d(C, 4), LeakyReLU], upsample =
Upsample(scale, 4), conv_last = Conv2d(4, in_chans)). After spandrel's init
(torch.manual_seed(seed)), LayerNorm and BatchNorm weights / biases and Linear biases get
+ 0.1 N(0, 1), BatchNorm running means 0.1 N(0, 1) and variances U(0.5, 1.5), channel-attention
temperatures U(1, 4), and Linear weights (std 0.02, which leaves attention almost uniform) are
redrawn with std 1 / sqrt(fan_in), so that mapping bugs change the output clearly. Then every
float tensor of the state dict is rounded to a float16 value (the model runs in float32 on
those values), so that the state dict is stored exactly as float16 (the file stays < 400 KB).

One input per variant (one compile each in the tests), run as spandrel's
`ImageModelDescriptor` runs it (`SizeRequirements(minimum=16)`): reflect-padded at the bottom /
right (at most size - 1), then replicate-padded to at least 16 (spandrel's `pad_tensor`),
forward (the spatial attention zero-pads q, k, v to a multiple of max(split_size)), output
cropped to [:H * s, :W * s], not clamped. spandrel's own loader and call (which clamps to
[0, 1]) give the clamped 'light_x2' output (asserted).

dat_golden.npz:
  '<name>/sd/<key>'      the state dict (parameters and buffers: rpe_biases,
                         relative_position_index, attn_mask_<0|1> of shifted blocks, BatchNorm
                         statistics but not num_batches_tracked), floats as float16, integers
                         as int64.
  '<name>/hparams'       JSON: the jaxsr DAT kwargs `interop.families.dat.detect` must return.
  '<name>/input_0'       float32 NHWC [B, H, W, C] in [0, 1] (INPUT_SHAPES).
  '<name>/output_0'      float32 NHWC [B, H * s, W * s, C].
  'spatial_attention/sd_<i>/<key>'  torch `Spatial_Attention(dim=64, idx=i, split_size=[2, 4],
                         num_heads=2)` (branch i of a block's spatial attention; position-bias
                         MLP 4 wide), perturbed as above; float16 / int64.
  'spatial_attention/qkv'           float16 [3, 1, 16, 64]: q, k, v of a 4 x 4 image.
  'spatial_attention/mask_<i>'      float32 [nW, T, T]: `calculate_mask(4, 4)[i]` of a block
                         with split_size [2, 4], shift [1, 2].
  'spatial_attention/output_<i>'    float32 NHWC [1, 4, 4, 64]: branch i on qkv with mask_i.
  'counts/<label>'       int64: sum(p.numel() for p in model.parameters()) of spandrel's DAT
                         in the released configurations (FULL_SIZE; the official option files
                         options/Train/train_DAT*_x*.yml); spandrel's loader re-detects each
                         configuration's hyper-parameters from its state dict (asserted).
"""

import json
import os
import types

import numpy as np
import torch
from torch import nn

from spandrel.__helpers.size_req import SizeRequirements, pad_tensor
from spandrel.architectures.DAT import DATArch
from spandrel.architectures.DAT.__arch import DAT as dat_arch

HERE = os.path.dirname(os.path.abspath(__file__))
NPZ_PATH = os.path.join(HERE, "dat_golden.npz")
NUM_FEAT = 4
SIZE_REQUIREMENTS = SizeRequirements(minimum=16)  # spandrel's DATArch.

SMALL = dict(embed_dim=32, img_range=1.0)
# name: torch kwargs over SMALL (jaxsr's hparams: the same, `upscale` as `scale`).
VARIANTS = {
    "x4": dict(upscale=4, in_chans=3, depth=[2, 1], num_heads=[2, 4], split_size=[2, 4],
               expansion_factor=1.0, qkv_bias=True, img_size=8, resi_connection="3conv",
               upsampler="pixelshuffle"),
    "x3": dict(upscale=3, in_chans=3, depth=[1], num_heads=[4], split_size=[4, 2],
               expansion_factor=1.5, qkv_bias=False, img_size=64, resi_connection="1conv",
               upsampler="pixelshuffle"),
    "x2": dict(upscale=2, in_chans=1, depth=[1], num_heads=[2], split_size=[2, 2],
               expansion_factor=1.0, qkv_bias=True, img_size=64, resi_connection="3conv",
               upsampler="pixelshuffle"),
    "light_x2": dict(upscale=2, in_chans=3, depth=[1], num_heads=[2], split_size=[2, 4],
                     expansion_factor=2.0, qkv_bias=True, img_size=64,
                     resi_connection="3conv", upsampler="pixelshuffledirect"),
}
# (B, H, W) per variant: one compile each in the tests. (1, 17, 3): H zero-padded (q, k, v) to
# 20, W reflect- then replicate-padded to 16; (1, 4, 7): both padded to 16; (1, 18, 17): both
# zero-padded (q, k, v); (2, 4, 7): a batch.
INPUT_SHAPES = {"x4": [(1, 17, 3)], "x3": [(1, 4, 7)], "x2": [(1, 18, 17)],
                "light_x2": [(2, 4, 7)]}
INPUT_SEED = 1234

_DAT = dict(img_size=64, in_chans=3, embed_dim=180, split_size=[8, 32], depth=[6] * 6,
            num_heads=[6] * 6, expansion_factor=4.0, resi_connection="1conv",
            upsampler="pixelshuffle")
_LIGHT = dict(img_size=64, in_chans=3, embed_dim=60, split_size=[8, 32], depth=[18],
              num_heads=[6], expansion_factor=2.0, resi_connection="3conv",
              upsampler="pixelshuffledirect")
FULL_SIZE = {
    "dat_x2": dict(_DAT, upscale=2),
    "dat_x3": dict(_DAT, upscale=3),
    "dat_x4": dict(_DAT, upscale=4),
    "dat_s_x4": dict(_DAT, upscale=4, split_size=[8, 16], expansion_factor=2.0),
    "dat_2_x4": dict(_DAT, upscale=4, expansion_factor=2.0),
    "dat_light_x2": dict(_LIGHT, upscale=2),
    "dat_light_x4": dict(_LIGHT, upscale=4),
}


def perturb(model: nn.Module, generator: torch.Generator) -> None:
  """Moves the parameters off spandrel's init (module docstring), then rounds the state dict to
  float16 values."""
  randn = lambda t: torch.randn(t.shape, generator=generator)
  with torch.no_grad():
    for sub in model.modules():
      if isinstance(sub, (nn.LayerNorm, nn.BatchNorm2d)):
        sub.weight.add_(0.1 * randn(sub.weight))
        sub.bias.add_(0.1 * randn(sub.bias))
      if isinstance(sub, nn.BatchNorm2d):
        sub.running_mean.copy_(0.1 * randn(sub.running_mean))
        sub.running_var.copy_(0.5 + torch.rand(sub.running_var.shape, generator=generator))
      elif isinstance(sub, nn.Linear):
        sub.weight.copy_(randn(sub.weight) * max(sub.weight.shape[1], 1)**-0.5)
        if sub.bias is not None:
          sub.bias.add_(0.1 * randn(sub.bias))
      if hasattr(sub, "temperature"):
        sub.temperature.copy_(1.0 + 3.0 * torch.rand(sub.temperature.shape,
                                                     generator=generator))
    for value in model.state_dict().values():
      if value.is_floating_point():
        value.copy_(value.half().float())


def build(kwargs: dict, seed: int) -> nn.Module:
  """spandrel's DAT with the small reconstruction (module docstring), perturbed, in eval."""
  torch.manual_seed(seed)
  model = dat_arch.DAT(**kwargs)
  if kwargs["upsampler"] == "pixelshuffle":
    model.conv_before_upsample = nn.Sequential(
        nn.Conv2d(kwargs["embed_dim"], NUM_FEAT, 3, 1, 1), nn.LeakyReLU(inplace=True))
    model.upsample = dat_arch.Upsample(kwargs["upscale"], NUM_FEAT)
    model.conv_last = nn.Conv2d(NUM_FEAT, kwargs["in_chans"], 3, 1, 1)
  perturb(model, torch.Generator().manual_seed(100 + seed))
  return model.eval()


def run_as_spandrel(model: nn.Module, x: torch.Tensor, scale: int) -> torch.Tensor:
  """spandrel's `ImageModelDescriptor.__call__` without the final clamp."""
  _, _, h, w = x.shape
  _, padded = pad_tensor(x, SIZE_REQUIREMENTS)
  with torch.no_grad():
    out = model(padded)
  return out[..., :h * scale, :w * scale]


def hparams(kwargs: dict) -> dict:
  """The jaxsr DAT kwargs of a torch configuration (what `detect` reads off its state dict)."""
  out = {"scale": kwargs["upscale"]}
  out.update({k: kwargs[k] for k in (
      "in_chans", "embed_dim", "split_size", "depth", "num_heads", "expansion_factor",
      "qkv_bias", "img_size", "resi_connection", "upsampler")})
  if kwargs["upsampler"] == "pixelshuffle":
    out["num_feat"] = NUM_FEAT
  return out


def store_state_dict(arrays: dict, prefix: str, state_dict: dict) -> None:
  for key, value in state_dict.items():
    if key.endswith(".num_batches_tracked"):
      continue
    value = value.numpy()
    if np.issubdtype(value.dtype, np.floating):
      assert np.array_equal(value.astype(np.float16).astype(np.float32), value), key
      value = value.astype(np.float16)
    arrays[f"{prefix}/{key}"] = value


def nhwc(t: torch.Tensor) -> np.ndarray:
  return t.permute(0, 2, 3, 1).numpy().astype(np.float32)


def spatial_attention(arrays: dict) -> None:
  """One branch of the spatial attention, 64 channels wide (module docstring)."""
  generator = torch.Generator().manual_seed(7)
  qkv = torch.randn((3, 1, 16, 64), generator=generator).half().float()
  arrays["spatial_attention/qkv"] = qkv.numpy().astype(np.float16)
  block = types.SimpleNamespace(split_size=[2, 4], shift_size=[1, 2])
  masks = dat_arch.Adaptive_Spatial_Attention.calculate_mask(block, 4, 4)
  for i in range(2):
    torch.manual_seed(50 + i)
    branch = dat_arch.Spatial_Attention(64, idx=i, split_size=[2, 4], num_heads=2)
    perturb(branch, torch.Generator().manual_seed(60 + i))
    store_state_dict(arrays, f"spatial_attention/sd_{i}", branch.eval().state_dict())
    with torch.no_grad():
      out = branch(qkv, 4, 4, mask=masks[i])  # [B, H, W, C]
    arrays[f"spatial_attention/mask_{i}"] = masks[i].numpy().astype(np.float32)
    arrays[f"spatial_attention/output_{i}"] = out.numpy().astype(np.float32)


def main():
  torch.set_num_threads(1)
  arrays = {}
  for seed, (name, kwargs) in enumerate(VARIANTS.items()):
    kwargs = dict(SMALL, **kwargs)
    model = build(kwargs, seed)
    store_state_dict(arrays, f"{name}/sd", model.state_dict())
    arrays[f"{name}/hparams"] = np.array(json.dumps(hparams(kwargs)))
    generator = torch.Generator().manual_seed(INPUT_SEED + seed)
    for i, (b, h, w) in enumerate(INPUT_SHAPES[name]):
      x = torch.rand((b, kwargs["in_chans"], h, w), generator=generator)
      out = run_as_spandrel(model, x, kwargs["upscale"])
      assert out.shape[2:] == (h * kwargs["upscale"], w * kwargs["upscale"])
      if name == "light_x2":  # spandrel's own loader and call: the clamped outputs.
        descriptor = DATArch().load(model.state_dict())
        assert descriptor.model.hyperparameters["img_size"] == kwargs["img_size"]
        assert torch.equal(descriptor(x), out.clamp(0, 1)), name
      arrays[f"{name}/input_{i}"] = nhwc(x)
      arrays[f"{name}/output_{i}"] = nhwc(out)
    outputs = [arrays[f"{name}/output_{i}"] for i in range(len(INPUT_SHAPES[name]))]
    print(f"{name}: {sum(v.numel() for v in model.state_dict().values())} values, output "
          f"range [{min(o.min() for o in outputs):.3f}, {max(o.max() for o in outputs):.3f}]")
  spatial_attention(arrays)

  for label, kwargs in FULL_SIZE.items():
    torch.manual_seed(0)
    model = dat_arch.DAT(**kwargs)
    count = sum(p.numel() for p in model.parameters())
    detected = DATArch().load(model.state_dict()).model.hyperparameters
    assert all(detected[k] == v for k, v in kwargs.items()), (label, detected)
    del model
    arrays[f"counts/{label}"] = np.array(count, dtype=np.int64)
    print(f"count {label}: {count:,}")

  np.savez_compressed(NPZ_PATH, **arrays)
  print(f"Wrote {NPZ_PATH} ({os.path.getsize(NPZ_PATH)} bytes)")


if __name__ == "__main__":
  main()
