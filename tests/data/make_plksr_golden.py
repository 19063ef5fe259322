"""Writes tests/data/plksr_golden.npz: tiny spandrel PLKSR / RealPLKSR models with seeded,
perturbed weights, their outputs on odd-sized inputs, and the parameter counts of the released
configurations, as golden vectors for jaxsr's `models/plksr.py` and `interop/families/plksr.py`.

Not run by the tests (torch and spandrel are not dependencies of jaxsr); documents how the
committed file was made:
  python -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install torch numpy spandrel==0.4.2
  /tmp/benchvenv/bin/python tests/data/make_plksr_golden.py
Made with torch 2.14.1 (CPU), numpy 2.4.6, spandrel 0.4.2. The architectures are spandrel's own
`spandrel/architectures/PLKSR/__arch/{PLKSR,RealPLKSR}.py` (DySample from
`__arch_helpers/dysample.py`), imported directly. One torch thread, fixed seeds: deterministic.

Models (VARIANTS): dim 4 (8 in 'plksr_x2' and 'realplksr_x2'), 1 or 2 blocks, kernel 5-11,
one per scale / channel mixer / large-kernel layout (PLK, with_idt, SparsePLK with and without
the max kernel, RectSparsePLK) of PLKSR and per scale / norm (GroupNorm with 4 or 2 groups,
LayerNorm) / upsampler of RealPLKSR (DySample at x1, x2, x3 (3 groups), x4). After the model's
own init (torch.manual_seed(seed)), every conv weight is redrawn as N(0, 1) / sqrt(fan_in)
(spandrel draws most of them with std 0.02 and DySample's `scope` is zero, which would hide
mapping bugs), DySample's `offset` weight 4x that (offsets of about a pixel, some beyond the
border), and every bias and norm weight / bias gets + 0.2 * N(0, 1);
then every parameter is rounded to a bfloat16 value (kept float32: the npz compresses better).
spandrel's own detection (`PLKSRArch().load`) is checked to rebuild each model's detectable
hyper-parameters.

tests/data/plksr_golden.npz:
  '<name>/sd/<key>'     float32: the state dict (model.state_dict(), the `to_img.init_pos`
                        buffer of DySample models included), PyTorch layouts.
  '<name>/hparams'      JSON str: what `jaxsr.interop.families.plksr.detect` must return
                        ({'arch': 'plksr' | 'realplksr', 'scale': ..., model kwargs}).
  '<name>/undetectable' JSON str: constructor kwargs the state dict cannot show (PLKSR
                        `with_idt`, RealPLKSR `norm_groups`), to add to the hparams.
  '<name>/input_<i>'    float32 NHWC [B, H, W, 3], multiples of 1/255 in [0, 1]; i = 0, 1
                        with (B, H, W) = (1, 7, 5), (2, 5, 9).
  '<name>/output_<i>'   float32 NHWC [B, H * s, W * s, 3]: model.eval()(x) as spandrel runs it
                        (no padding: the architecture takes any size).
  'counts/<label>'      int64: sum(p.numel() for p in model.parameters()) of the released
                        configurations (FULL_SIZE), x4.
"""

import json
import os

import numpy as np
import torch

from spandrel.architectures.PLKSR import PLKSRArch
from spandrel.architectures.PLKSR.__arch.PLKSR import PLKSR
from spandrel.architectures.PLKSR.__arch.RealPLKSR import RealPLKSR

HERE = os.path.dirname(os.path.abspath(__file__))
NPZ_PATH = os.path.join(HERE, "plksr_golden.npz")

# name: (class, detectable constructor kwargs, undetectable ones).
_P = dict(dim=4, split_ratio=0.25)
VARIANTS = {
    "plksr_x2": (PLKSR, dict(_P, dim=8, n_blocks=2, upscaling_factor=2, kernel_size=7,
                             ccm_type="DCCM"), {}),
    "plksr_x3_ccm_noea": (PLKSR, dict(_P, n_blocks=1, upscaling_factor=3, kernel_size=5,
                                      ccm_type="CCM", use_ea=False), {}),
    "plksr_x4_iccm": (PLKSR, dict(_P, n_blocks=1, upscaling_factor=4, kernel_size=7,
                                  ccm_type="ICCM"), {}),
    "plksr_x2_idt": (PLKSR, dict(_P, n_blocks=1, upscaling_factor=2, kernel_size=5,
                                 ccm_type="DCCM", split_ratio=0.5), {"with_idt": True}),
    "plksr_x2_rect": (PLKSR, dict(_P, n_blocks=1, upscaling_factor=2, kernel_size=9,
                                  ccm_type="CCM", lk_type="RectSparsePLK"), {}),
    "plksr_x2_sparse": (PLKSR, dict(_P, n_blocks=1, upscaling_factor=2, kernel_size=7,
                                    ccm_type="DCCM", lk_type="SparsePLK", sparse_kernels=[3] * 4,
                                    sparse_dilations=[1, 2, 3, 4]), {}),
    "plksr_x2_sparse_max": (PLKSR, dict(_P, n_blocks=1, upscaling_factor=2, kernel_size=11,
                                        ccm_type="DCCM", lk_type="SparsePLK",
                                        sparse_kernels=[3] * 4, sparse_dilations=[1, 2, 3, 4],
                                        use_max_kernel=True), {}),
    "realplksr_x2": (RealPLKSR, dict(_P, dim=8, n_blocks=2, upscaling_factor=2, kernel_size=7), {}),
    "realplksr_x4_ln": (RealPLKSR, dict(_P, n_blocks=1, upscaling_factor=4, kernel_size=7,
                                        layer_norm=True), {}),
    "realplksr_x3_noea_groups2": (RealPLKSR, dict(_P, n_blocks=1, upscaling_factor=3,
                                                  kernel_size=5, use_ea=False),
                                  {"norm_groups": 2}),
    "realplksr_x1_dysample": (RealPLKSR, dict(_P, n_blocks=1, upscaling_factor=1, kernel_size=5,
                                              dysample=True), {}),
    "realplksr_x2_dysample": (RealPLKSR, dict(_P, n_blocks=2, upscaling_factor=2, kernel_size=7,
                                              dysample=True), {}),
    "realplksr_x3_dysample": (RealPLKSR, dict(_P, n_blocks=1, upscaling_factor=3, kernel_size=5,
                                              dysample=True, layer_norm=True), {}),
    "realplksr_x4_dysample_ln": (RealPLKSR, dict(_P, n_blocks=1, upscaling_factor=4,
                                                 kernel_size=7, dysample=True, layer_norm=True),
                                 {}),
}

INPUT_SHAPES = ((1, 7, 5), (2, 5, 9))  # (B, H, W)
INPUT_SEED = 1234

# The released x4 models: PLKSR (DIV2K, paper), PLKSR-tiny (paper), RealPLKSR (spandrel /
# neosr defaults, GroupNorm) and traiNNer-redux's RealPLKSR (layer_norm), with DySample.
FULL_SIZE = {
    "plksr_x4": (PLKSR, dict(dim=64, n_blocks=28, upscaling_factor=4, kernel_size=17,
                             split_ratio=0.25, ccm_type="DCCM", use_ea=True)),
    "plksr_tiny_x4": (PLKSR, dict(dim=64, n_blocks=12, upscaling_factor=4, kernel_size=13,
                                  split_ratio=0.25, ccm_type="DCCM", use_ea=False)),
    "realplksr_x4": (RealPLKSR, dict(dim=64, n_blocks=28, upscaling_factor=4, kernel_size=17,
                                     split_ratio=0.25)),
    "realplksr_ln_x4": (RealPLKSR, dict(dim=64, n_blocks=28, upscaling_factor=4, kernel_size=17,
                                        split_ratio=0.25, layer_norm=True)),
    "realplksr_dysample_x4": (RealPLKSR, dict(dim=64, n_blocks=28, upscaling_factor=4,
                                              kernel_size=17, split_ratio=0.25, dysample=True)),
}


def expected_hparams(cls, kwargs: dict) -> dict:
  """What `detect` must return for a model built with `kwargs`."""
  kw = dict(kwargs)
  scale = kw.pop("upscaling_factor")
  dim = kw["dim"]
  pdim = int(dim * kw["split_ratio"])
  common = dict(scale=scale, dim=dim, n_blocks=kw["n_blocks"], kernel_size=kw["kernel_size"],
                split_ratio=pdim / dim, use_ea=kw.get("use_ea", True))
  if cls is RealPLKSR:
    return dict(arch="realplksr", **common, dysample=kw.get("dysample", False),
                layer_norm=kw.get("layer_norm", False))
  out = dict(arch="plksr", **common, ccm_type=kw["ccm_type"],
             lk_type=kw.get("lk_type", "PLK"))
  if out["lk_type"] == "SparsePLK":
    kernels, dilations = kw["sparse_kernels"], kw["sparse_dilations"]
    use_max = kw.get("use_max_kernel", False)
    out.update(sparse_kernels=list(kernels), sparse_dilations=list(dilations),
               use_max_kernel=use_max)
    # kernel_size only sizes the max kernel: max(kernel_size, the dilated kernels' sizes).
    out["kernel_size"] = max([kw["kernel_size"]] +
                             [(k - 1) * d + 1 for k, d in zip(kernels, dilations)])
  return out


def perturb(model: torch.nn.Module, generator: torch.Generator) -> None:
  """Moves the weights off their init (see the module docstring)."""
  noise = lambda t: t.add_(0.2 * torch.randn(t.shape, generator=generator))
  with torch.no_grad():
    for name, sub in model.named_modules():
      if isinstance(sub, torch.nn.Conv2d):
        fan_in = sub.weight[0].numel()
        gain = 4.0 if name.endswith("to_img.offset") else 1.0
        sub.weight.copy_(torch.randn(sub.weight.shape, generator=generator)
                         * gain / fan_in**0.5)
        if sub.bias is not None:
          noise(sub.bias)
      elif isinstance(sub, torch.nn.GroupNorm) or type(sub).__name__ == "LayerNorm":
        noise(sub.weight)
        noise(sub.bias)
    for param in model.parameters():  # bfloat16 values (float32 dtype): the npz compresses.
      param.copy_(param.to(torch.bfloat16).float())


def check_spandrel_detection(model, state_dict, cls, kwargs, undetectable) -> None:
  """spandrel's `PLKSRArch().load` rebuilds the detectable hyper-parameters."""
  if kwargs.get("lk_type") == "SparsePLK":
    return  # spandrel gives up on SparsePLK (it assumes the default kernels).
  detected = PLKSRArch().load(state_dict).model
  assert type(detected) is cls, (type(detected), cls)
  for key, value in model.hyperparameters.items():
    if key not in undetectable and key not in ("dropout",):
      assert detected.hyperparameters[key] == value, (key, detected.hyperparameters[key], value)


def main():
  torch.set_num_threads(1)
  arrays = {}
  generator = torch.Generator().manual_seed(INPUT_SEED)
  inputs = [torch.round(torch.rand((b, 3, h, w), generator=generator) * 255) / 255
            for b, h, w in INPUT_SHAPES]

  for seed, (name, (cls, kwargs, undetectable)) in enumerate(VARIANTS.items()):
    torch.manual_seed(seed)
    kwargs = dict(kwargs, **undetectable)
    model = cls(**kwargs)
    perturb(model, torch.Generator().manual_seed(100 + seed))
    model.eval()
    state_dict = model.state_dict()
    check_spandrel_detection(model, state_dict, cls, kwargs, undetectable)
    for key, value in state_dict.items():
      arrays[f"{name}/sd/{key}"] = value.numpy().astype(np.float32)
    arrays[f"{name}/hparams"] = np.array(json.dumps(expected_hparams(cls, kwargs)))
    arrays[f"{name}/undetectable"] = np.array(json.dumps(undetectable))
    scale = kwargs["upscaling_factor"]
    for i, x in enumerate(inputs):
      with torch.no_grad():
        out = model(x.clone())
      assert out.shape[2:] == (x.shape[2] * scale, x.shape[3] * scale)
      arrays[f"{name}/input_{i}"] = x.permute(0, 2, 3, 1).numpy().astype(np.float32)
      arrays[f"{name}/output_{i}"] = out.permute(0, 2, 3, 1).numpy().astype(np.float32)
    if kwargs.get("dysample"):
      with torch.no_grad():
        y = model.feats(inputs[1]) + model.repeat_op(inputs[1])
        offset = (model.to_img.offset(y) * model.to_img.scope(y).sigmoid() * 0.5).abs()
      print(f"  {name}: |offset| mean {offset.mean():.2f} max {offset.max():.2f} px")
    outputs = [arrays[f"{name}/output_{i}"] for i in range(len(inputs))]
    print(f"{name}: {sum(v.numel() for v in state_dict.values())} values, output range "
          f"[{min(o.min() for o in outputs):.3f}, {max(o.max() for o in outputs):.3f}]")

  for label, (cls, kwargs) in FULL_SIZE.items():
    model = cls(**kwargs)
    count = sum(p.numel() for p in model.parameters())
    arrays[f"counts/{label}"] = np.array(count, dtype=np.int64)
    print(f"count {label}: {count:,}")

  np.savez_compressed(NPZ_PATH, **arrays)
  print(f"Wrote {NPZ_PATH} ({os.path.getsize(NPZ_PATH)} bytes)")


if __name__ == "__main__":
  main()
