"""Writes torch_small.pth, torch_small_legacy.pth and torch_small_expected.npz (needs torch).

Not run by the tests (torch is not a dependency); documents how the committed files were made:
  python -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
  /tmp/torchvenv/bin/python tests/data/make_torch_small.py
Made with torch 2.13.0 (CPU). The object is BasicSR-style {'params': state_dict, 'iter': 7}:
a Conv2d + BatchNorm2d state dict (an OrderedDict carrying `_metadata`; BN's int64
`num_batches_tracked`), a transposed (non-contiguous) view and an offset slice of one shared
storage, float16 and bfloat16 tensors, a 0-d tensor and an nn.Parameter.
`torch_small_legacy.pth` is the same object in the torch < 1.6 (non-zip) format. The npz holds
every tensor under 'params/<name>' (bfloat16 as float32, which holds it exactly).
"""

import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def make_object():
  torch.manual_seed(0)
  module = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
  bn = module[1]
  bn.running_mean.copy_(torch.randn(3))
  bn.running_var.copy_(torch.rand(3) + 0.5)
  bn.num_batches_tracked.fill_(123456789012)  # Needs int64.
  params = module.state_dict()  # OrderedDict with `_metadata`, pickled through BUILD.
  base = torch.randn(3, 4)
  params["transposed"] = base.t()  # [4, 3], strides (1, 4).
  params["window"] = base[1:, 1:3]  # Same storage, offset 5, strides (4, 1).
  params["half"] = torch.tensor([0.5, -1.25, 65504.0, 1e-4], dtype=torch.float16)
  params["bf16"] = torch.tensor([1.5, -3.0e38, 0.1], dtype=torch.bfloat16)
  params["scalar"] = torch.tensor(2.5)
  params["param"] = torch.nn.Parameter(torch.randn(2))
  return {"params": params, "iter": 7}


def main():
  obj = make_object()
  torch.save(obj, os.path.join(HERE, "torch_small.pth"))
  torch.save(obj, os.path.join(HERE, "torch_small_legacy.pth"),
             _use_new_zipfile_serialization=False)
  expected = {}
  for name, tensor in obj["params"].items():
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
      tensor = tensor.float()
    expected[f"params/{name}"] = tensor.numpy()
  np.savez(os.path.join(HERE, "torch_small_expected.npz"), **expected)


if __name__ == "__main__":
  main()
