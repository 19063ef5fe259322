"""SPAN (hongyuanyu/SPAN `span_arch.py`, spandrel `architectures/SPAN`): conv_1, block_<1..6>
(c1_r, c2_r, c3_r), conv_2 are Conv3XCs, conv_cat a 1x1 conv, upsampler.0 the pixel-shuffle
conv. Two layouts:

  training (spandrel detects it): each Conv3XC holds its branches `sk`, `conv.0..2` and the
    merged `eval_conv` (recomputed from the branches at every eval forward, so possibly stale
    in the file: dropped); `no_norm` (a [1] buffer) marks norm=False;
  re-parameterised (e.g. the NTIRE 2024 winner, NTIRE2024_ESR team38_span_ch28_slim.pth): only
    `eval_conv` per Conv3XC; jaxsr's SPAN with deploy=True.
"""

from typing import Any, Optional

import numpy as np

StateDict = dict[str, np.ndarray]

ARCH = "span"
# spandrel's SPANArch detection keys (training layout).
_TRAINING_KEYS = ("conv_1.sk.weight", "block_1.c1_r.sk.weight", "block_1.c1_r.eval_conv.weight",
                  "block_1.c3_r.eval_conv.weight", "conv_cat.weight", "conv_2.sk.weight",
                  "conv_2.eval_conv.weight", "upsampler.0.weight")
_DEPLOY_KEYS = ("conv_1.eval_conv.weight", "block_1.c1_r.eval_conv.weight",
                "block_6.c3_r.eval_conv.weight", "conv_cat.weight", "conv_2.eval_conv.weight",
                "upsampler.0.weight")
_BRANCHES = ("sk", "conv.0", "conv.1", "conv.2")
_NUM_BLOCKS = 6
CONV3XC = ("conv_1", *(f"block_{b}.c{c}_r" for b in range(1, _NUM_BLOCKS + 1)
                       for c in (1, 2, 3)), "conv_2")


def scale_and_out_channels(channels: int, num_in_ch: int) -> tuple[int, int]:
  """spandrel's `get_scale_and_output_channels`: the upsampler conv's `channels` = out *
  scale^2 with out the first of (num_in_ch, 3, 4, 1) that leaves a square."""
  for out in (num_in_ch, 3, 4, 1):
    root = int(round((channels // out)**0.5)) if channels % out == 0 else 0
    if root and root * root * out == channels:
      return root, out
  raise ValueError(f"span: upsampler.0 has {channels} output channels, not out * scale^2 "
                   f"for 1, 3 or 4 output channels")


def _has_conv(state_dict: StateDict, key: str) -> bool:
  return key in state_dict and np.ndim(state_dict[key]) == 4


def detect(state_dict: StateDict) -> Optional[dict[str, Any]]:
  """scale, num_in_ch, num_out_ch, feature_channels (conv_1's shape; spandrel's rule for the
  upsampler), norm (False when `no_norm` is there) and deploy (re-parameterised layout). Not
  in the weights: img_range 255 and the DIV2K rgb_mean (jaxsr's defaults, as spandrel's)."""
  if all(_has_conv(state_dict, k) for k in _TRAINING_KEYS):
    deploy, first = False, state_dict["conv_1.sk.weight"]
  elif (all(_has_conv(state_dict, k) for k in _DEPLOY_KEYS)
        and not any(f".{branch}." in k for k in state_dict for branch in _BRANCHES)):
    deploy, first = True, state_dict["conv_1.eval_conv.weight"]
  else:
    return None
  feature_channels, num_in_ch = (int(n) for n in np.shape(first)[:2])
  scale, num_out_ch = scale_and_out_channels(int(np.shape(state_dict["upsampler.0.weight"])[0]),
                                             num_in_ch)
  return dict(scale=scale, num_in_ch=num_in_ch, num_out_ch=num_out_ch,
              feature_channels=feature_channels, norm="no_norm" not in state_dict,
              deploy=deploy)


def merge_conv3xc(state_dict: StateDict, prefix: str) -> tuple[np.ndarray, np.ndarray]:
  """The merged 3x3 conv (PyTorch layout: weight `[out, in, 3, 3]`, bias `[out]`) of the
  Conv3XC `prefix`'s branches, as the official `update_params` (computed in float64)."""
  get = lambda name: np.asarray(state_dict[f"{prefix}.{name}"], np.float64)
  w0, w1, w2 = (get(f"conv.{i}.weight") for i in range(3))
  weight = np.einsum("on,nmhw,mi->oihw", w2[:, :, 0, 0], w1, w0[:, :, 0, 0])
  weight[:, :, 1, 1] += get("sk.weight")[:, :, 0, 0]
  inner_bias = np.einsum("nmhw,m->n", w1, get("conv.0.bias")) + get("conv.1.bias")
  bias = w2[:, :, 0, 0] @ inner_bias + get("conv.2.bias") + get("sk.bias")
  dtype = np.asarray(state_dict[f"{prefix}.sk.weight"]).dtype
  return weight.astype(dtype), bias.astype(dtype)


def to_jaxsr(state_dict: StateDict, hparams: dict[str, Any]) -> StateDict:
  """Drops `no_norm` and, for a training-form model, the `eval_conv` entries; for
  deploy=True merges the branches of a training checkpoint into `eval_conv` (a
  re-parameterised checkpoint passes as is). The other names map as they are."""
  state_dict = {k: v for k, v in state_dict.items() if k != "no_norm"}
  has_branches = any(f"{p}.sk.weight" in state_dict for p in CONV3XC)
  if not hparams.get("deploy", False):
    if not has_branches and "conv_1.eval_conv.weight" in state_dict:
      raise ValueError("span: a re-parameterised checkpoint (only eval_conv) has no training "
                       "branches to load; build the model with deploy=True")
    return {k: v for k, v in state_dict.items() if ".eval_conv." not in k}
  if not has_branches:
    return state_dict
  merged = {k: v for k, v in state_dict.items()
            if not any(k.startswith(f"{p}.") for p in CONV3XC)}
  for prefix in CONV3XC:
    merged[f"{prefix}.eval_conv.weight"], merged[f"{prefix}.eval_conv.bias"] = (
        merge_conv3xc(state_dict, prefix))
  return merged
