"""Writes tests/data/span_golden.npz: tiny SPAN models (spandrel's own architecture code) with
seeded random weights, their inputs and outputs, and the parameter counts of the released SPAN
configurations, as golden vectors for jaxsr's SPAN (jaxsr/models/span.py).

Not run by the tests (torch is not a dependency of jaxsr); documents how the committed file was
made:
  /tmp/benchvenv/bin/python tests/data/make_span_golden.py
Made with torch 2.14.1 (CPU), numpy 2.4.6, spandrel 0.4.2. The architecture is spandrel's
`spandrel/architectures/SPAN/__arch/span.py` (the official `basicsr/archs/span_arch.py` of
hongyuanyu/SPAN plus the `norm` switch); the models are built from that class, then loaded the
way spandrel loads a file: `ModelLoader().load_from_state_dict(state_dict)`, whose detection
(`SPANArch.load`) must give back the hyper-parameters (checked here). One torch thread, fixed
seeds: deterministic.

Models (VARIANTS): the full SPAN graph (conv_1, six SPABs, conv_2, conv_cat, one-conv
pixel-shuffle upsampler) at a few feature channels (not the default 48), one per scale and
`norm` setting; 'x1_gray' has one input / output channel. Weights keep torch's default init (no
norm layers or small inits to perturb; biases are non-zero), rounded to bfloat16-representable
float32 values (half the bytes after compression; still exact float32 weights). In eval mode
every Conv3XC merges its training branches (1x1 `sk`, 1x1 -> 3x3 -> 1x1 `conv`) into
`eval_conv` at each forward (`update_params`), so the state dict is taken after a forward pass:
its `eval_conv` entries are the merged ones, consistent with the branches (checkpoints may hold
stale ones; spandrel overwrites them). The re-parameterised layout needs no file of its own:
the 'x4' entries without the branches (`sk`, `conv.<i>`) are one, with the 'x4' outputs.

tests/data/span_golden.npz:
  '<name>/sd/<key>'    float32 state-dict entries (PyTorch layouts), model.state_dict() as is:
                       parameters plus, when norm=False, the `no_norm` buffer ([1] zeros).
  '<name>/hparams'     JSON (str scalar): what jaxsr.interop.families.span.detect must return
                       (scale, num_in_ch, num_out_ch, feature_channels, norm, deploy=False),
                       spandrel's detected hyper-parameters in jaxsr's names.
  '<name>/input_<i>'   float32 NHWC [B, H, W, C] in [0, 1]; (B, H, W) = INPUT_SHAPES[i], the
                       same for every model.
  '<name>/output_<i>'  float32 NHWC [B, H * s, W * s, C]: spandrel's module in eval mode on the
                       input as is (SPAN has no size requirements: spandrel neither pads nor
                       crops), not clamped (spandrel's descriptor clamps to [0, 1] afterwards).
  'counts/<label>'     int64: sum(p.numel() for p in model.parameters()) of spandrel's SPAN in
                       the released configurations (RELEASED), eval_conv included;
  'counts/<label>_train'   the same without the eval_conv parameters (the trained weights);
  'counts/<label>_deploy'  only eval_conv, conv_cat and upsampler: the re-parameterised model
                       the papers count (NTIRE 2024 report: 0.151 M for 'ntire2024_x4_ch28').
"""

import json
import os

import numpy as np
import torch

from spandrel import ModelLoader
from spandrel.architectures.SPAN import SPAN

HERE = os.path.dirname(os.path.abspath(__file__))
NPZ_PATH = os.path.join(HERE, "span_golden.npz")

# name: SPAN kwargs.
VARIANTS = {
    "x4": dict(num_in_ch=3, num_out_ch=3, feature_channels=4, upscale=4, norm=True),
    "x2_no_norm": dict(num_in_ch=3, num_out_ch=3, feature_channels=3, upscale=2, norm=False),
    "x3": dict(num_in_ch=3, num_out_ch=3, feature_channels=3, upscale=3, norm=True),
    "x1_gray": dict(num_in_ch=1, num_out_ch=1, feature_channels=3, upscale=1, norm=False),
}
INPUT_SHAPES = ((1, 7, 5), (2, 3, 5), (1, 2, 3))  # (B, H, W)
INPUT_SEED = 1234

# Released SPAN weights (hongyuanyu/SPAN: spanx2_ch48, spanx2_ch52, spanx4_ch48, spanx4_ch52) and
# the NTIRE 2024 ESR winner (NTIRE2024_ESR model_zoo/team38_span_ch28_slim.pth: SPAN with 28
# channels, saved re-parameterised).
RELEASED = {
    "x4_ch48": dict(feature_channels=48, upscale=4),
    "x4_ch52": dict(feature_channels=52, upscale=4),
    "x2_ch48": dict(feature_channels=48, upscale=2),
    "x2_ch52": dict(feature_channels=52, upscale=2),
    "ntire2024_x4_ch28": dict(feature_channels=28, upscale=4),
}


def jaxsr_hparams(spandrel_hparams: dict) -> dict:
  """spandrel's SPAN kwargs -> jaxsr's SPAN fields (what `detect` returns)."""
  h = spandrel_hparams
  return dict(scale=h["upscale"], num_in_ch=h["num_in_ch"], num_out_ch=h["num_out_ch"],
              feature_channels=h["feature_channels"], norm=h["norm"], deploy=False)


def main():
  torch.set_num_threads(1)
  arrays = {}
  generator = torch.Generator().manual_seed(INPUT_SEED)
  noise = {shape: torch.rand((shape[0], 3, *shape[1:]), generator=generator)
           for shape in INPUT_SHAPES}

  for seed, (name, kwargs) in enumerate(VARIANTS.items()):
    torch.manual_seed(seed)
    model = SPAN(**kwargs).eval()
    with torch.no_grad():
      for param in model.parameters():  # bfloat16-representable: the file compresses better.
        param.copy_(param.to(torch.bfloat16).float())
      model(torch.rand(1, kwargs["num_in_ch"], 4, 4))  # Merges every Conv3XC (see the doc).
    state_dict = {k: v.clone() for k, v in model.state_dict().items()}

    descriptor = ModelLoader().load_from_state_dict(dict(state_dict))
    loaded = descriptor.model.eval()
    assert type(loaded).__name__ == "SPAN", type(loaded)
    detected = dict(loaded.hyperparameters)
    assert {k: detected[k] for k in kwargs} == kwargs, (name, detected)
    req = descriptor.size_requirements
    assert (req.minimum, req.multiple_of, req.square) in ((0, 1, False), (1, 1, False)), req

    for key, value in state_dict.items():
      arrays[f"{name}/sd/{key}"] = value.numpy().astype(np.float32)
    arrays[f"{name}/hparams"] = np.array(json.dumps(jaxsr_hparams(detected), sort_keys=True))
    for i, shape in enumerate(INPUT_SHAPES):
      x = noise[shape][:, :kwargs["num_in_ch"]].contiguous()
      with torch.no_grad():
        out = loaded(x)
      scale = kwargs["upscale"]
      assert out.shape == (shape[0], kwargs["num_out_ch"], shape[1] * scale, shape[2] * scale)
      arrays[f"{name}/input_{i}"] = x.permute(0, 2, 3, 1).numpy().astype(np.float32)
      arrays[f"{name}/output_{i}"] = out.permute(0, 2, 3, 1).numpy().astype(np.float32)
    outputs = [arrays[f"{name}/output_{i}"] for i in range(len(INPUT_SHAPES))]
    print(f"{name}: {sum(v.numel() for v in state_dict.values())} state-dict values, output "
          f"range [{min(o.min() for o in outputs):.3f}, {max(o.max() for o in outputs):.3f}]")

  for label, kwargs in RELEASED.items():
    model = SPAN(num_in_ch=3, num_out_ch=3, **kwargs)
    named = dict(model.named_parameters())
    total = sum(p.numel() for p in named.values())
    merged = sum(p.numel() for k, p in named.items() if ".eval_conv." in k)
    branches = sum(p.numel() for k, p in named.items() if ".sk." in k or ".conv." in k)
    arrays[f"counts/{label}"] = np.array(total, dtype=np.int64)
    arrays[f"counts/{label}_train"] = np.array(total - merged, dtype=np.int64)
    arrays[f"counts/{label}_deploy"] = np.array(total - branches, dtype=np.int64)
    print(f"count {label}: {total:,} (train {total - merged:,}, deploy {total - branches:,})")

  np.savez_compressed(NPZ_PATH, **arrays)
  print(f"Wrote {NPZ_PATH} ({os.path.getsize(NPZ_PATH)} bytes)")


if __name__ == "__main__":
  main()
