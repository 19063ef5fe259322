"""RCAN in the official / spandrel layout (`rcan_arch.py`): [sub_mean, add_mean], head.0 (or
head.1 after a PixelUnshuffle), body.<g>.body.<b>.body.{0, 2, 3.conv_du.{0, 2}} (RCABs),
body.<g>.body.<n_resblocks> and body.<n_resgroups> (convs), tail.0.<0, 2, ...> (upsampler),
tail.1. Only the upsampler's keys are renamed (Sequential indices inside a Sequential):
tail.0.<k>. -> upsample.<k>. The mean shifts are parameters and are loaded as they are."""

import math
import re
from typing import Any, Optional

import numpy as np

ARCH = "rcan"
_GROUP = re.compile(r"body\.(\d+)\.body\.0\.body\.0\.weight")
_BLOCK = re.compile(r"body\.0\.body\.(\d+)\.body\.0\.weight")
_UPSAMPLE = re.compile(r"tail\.0\.(\d+)\.weight")
_ATTENTION = "body.0.body.0.body.3.conv_du.0.weight"
_REQUIRED = ("tail.1.weight", "body.0.body.0.body.0.weight", _ATTENTION)


def _shape(state_dict: dict, key: str) -> tuple:
  return tuple(np.shape(state_dict[key]))


def _indices(state_dict: dict, pattern: re.Pattern) -> list:
  return sorted(int(m.group(1)) for k in state_dict if (m := pattern.fullmatch(k)))


def _read(state_dict: dict) -> dict[str, Any]:
  """The hyper-parameters, read as spandrel's `RCANArch.load` reads them (ValueError on an
  inconsistent RCAN state dict)."""
  unshuffle = "head.0.weight" not in state_dict
  head = _shape(state_dict, f"head.{int(unshuffle)}.weight")  # [n_feats, in, k, k]
  n_feats, in_channels, kernel_size = head[0], head[1], head[-1]
  n_colors = _shape(state_dict, "tail.1.weight")[0]
  groups, blocks = _indices(state_dict, _GROUP), _indices(state_dict, _BLOCK)
  if groups != list(range(len(groups))) or blocks != list(range(len(blocks))):
    raise ValueError(f"Not an RCAN state dict: groups {groups}, blocks {blocks}")
  if f"body.{len(groups)}.weight" not in state_dict:
    raise ValueError(f"Not an RCAN state dict: no 'body.{len(groups)}.weight'")
  upscale = 1
  for k in _indices(state_dict, _UPSAMPLE):  # [factor^2 * n_feats, n_feats, 3, 3] each.
    out, inp = _shape(state_dict, f"tail.0.{k}.weight")[:2]
    upscale *= math.isqrt(out // inp)
  if unshuffle:
    down = math.isqrt(in_channels // n_colors)
    if down not in (2, 4) or down * down * n_colors != in_channels or upscale != 4:
      raise ValueError(f"RCAN: head.1 ({in_channels} channels for {n_colors} colors) and a x"
                       f"{upscale} upsampler are not an unshuffle front end")
    scale = 4 // down
  else:
    scale = upscale
  squeeze = _shape(state_dict, _ATTENTION)[0]
  return dict(scale=scale, n_resgroups=len(groups), n_resblocks=len(blocks), n_feats=n_feats,
              n_colors=n_colors, rgb_range=255.0, norm="sub_mean.weight" in state_dict,
              kernel_size=kernel_size, reduction=n_feats // squeeze, act_mode="relu",
              unshuffle_mod=unshuffle)


def detect(state_dict: dict[str, np.ndarray]) -> Optional[dict[str, Any]]:
  """jaxsr `RCAN` kwargs (with 'scale') when `state_dict` is an RCAN's, else None.

  As spandrel: rgb_range (255), act_mode ('relu') and res_scale (unused by the RCAB) are not in
  the weights; unshuffle_mod when the head conv is `head.1` (after the PixelUnshuffle). Unlike
  spandrel, n_feats comes from the head conv, so x1 models without unshuffle read right.
  ValueError for a state dict with RCAN's distinctive keys whose shapes do not fit together.
  """
  if not all(k in state_dict for k in _REQUIRED):
    return None
  if not ("head.0.weight" in state_dict or "head.1.weight" in state_dict):
    return None
  return _read(state_dict)


def to_jaxsr(state_dict: dict[str, np.ndarray], hparams: dict[str, Any]) -> dict[str, np.ndarray]:
  """Renames `tail.0.<k>.` (the upsampler's convs) to `upsample.<k>.`; keeps every other key
  (RCAN has no buffers)."""
  del hparams
  return {re.sub(r"^tail\.0\.(\d+)\.", r"upsample.\1.", k): v for k, v in state_dict.items()}
