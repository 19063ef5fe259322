"""DAT (jaxsr.models.dat): spandrel 0.4.2's / the official `dat_arch.py` state dicts (DAT,
DAT-S, DAT-2, DAT-light; both upsamplers and residual connections).

Hyper-parameters read off the shapes as spandrel's `DATArch` does: heads from a channel block's
`temperature` (or twice a spatial block's position-bias heads in a one-block group), split_size
from `rpe_biases`, img_size from a shifted block's `attn_mask_0` (64 when no block shifts),
scale from the upsampler convs; img_range is not in the state dict (1, DAT's and spandrel's).
The buffers rpe_biases, relative_position_index and attn_mask_<0|1> are checked against their
recomputation, then dropped; the names need no renaming.
"""

import math
import re
from typing import Optional

import numpy as np

ARCH = "dat"

_BLOCK0 = "layers.0.blocks.0."
_KEYS = ("conv_first.weight", "before_RG.1.weight", "norm.weight",
         _BLOCK0 + "norm1.weight", _BLOCK0 + "attn.qkv.weight", _BLOCK0 + "attn.dwconv.0.weight",
         _BLOCK0 + "attn.attns.0.rpe_biases", _BLOCK0 + "attn.attns.0.pos.pos3.2.weight",
         _BLOCK0 + "ffn.fc1.weight", _BLOCK0 + "ffn.sg.conv.weight")
_MASK_VALUE = -100.0


def _count(state_dict: dict, pattern: str) -> int:
  """1 + the largest integer captured by `pattern` over the keys (0 if none)."""
  found = [int(m.group(1)) for m in map(re.compile(pattern).match, state_dict) if m]
  return max(found, default=-1) + 1


def detect(state_dict: dict[str, np.ndarray]) -> Optional[dict]:
  """jaxsr DAT kwargs (with 'scale') of a DAT state dict, else None."""
  if any(k not in state_dict for k in _KEYS):
    return None
  try:
    return _read_hparams(state_dict)
  except (KeyError, IndexError, ValueError, TypeError, ZeroDivisionError):
    return None


def _read_hparams(sd: dict) -> Optional[dict]:
  shape = lambda key: tuple(np.shape(sd[key]))
  embed_dim, in_chans = shape("conv_first.weight")[:2]
  groups = _count(sd, r"^layers\.(\d+)\.")
  depth = tuple(_count(sd, rf"^layers\.{i}\.blocks\.(\d+)\.") for i in range(groups))
  num_heads = tuple(
      shape(f"layers.{i}.blocks.1.attn.temperature")[0] if d >= 2
      else 2 * shape(f"layers.{i}.blocks.0.attn.attns.0.pos.pos3.2.weight")[0]
      for i, d in enumerate(depth))
  offsets = np.asarray(sd[_BLOCK0 + "attn.attns.0.rpe_biases"])
  split_size = tuple(int(v) + 1 for v in offsets[-1])
  masks = [k for k in sd if k.endswith(".attn.attn_mask_0")]
  img_size = math.isqrt(math.prod(shape(masks[0])[:2])) if masks else 64
  if "conv_after_body.weight" in sd:
    resi_connection = "1conv"
  elif "conv_after_body.4.weight" in sd:
    resi_connection = "3conv"
  else:
    return None
  hparams = {}
  if "conv_last.weight" in sd:
    upsampler, scale, k = "pixelshuffle", 1, 0
    while f"upsample.{k}.weight" in sd:
      out, inp = shape(f"upsample.{k}.weight")[:2]
      scale, k = scale * math.isqrt(out // inp), k + 2
    hparams["num_feat"] = shape("conv_before_upsample.0.weight")[0]
  elif "upsample.0.weight" in sd:
    upsampler = "pixelshuffledirect"
    scale = math.isqrt(shape("upsample.0.weight")[0] // in_chans)
  else:
    return None
  return {"scale": scale, "in_chans": in_chans, "embed_dim": embed_dim,
          "split_size": split_size, "depth": depth, "num_heads": num_heads,
          "expansion_factor": shape(_BLOCK0 + "ffn.fc1.weight")[0] / embed_dim,
          "qkv_bias": _BLOCK0 + "attn.qkv.bias" in sd, "img_size": img_size,
          "resi_connection": resi_connection, "upsampler": upsampler, **hparams}


def position_offsets(window: tuple[int, int]) -> np.ndarray:
  """torch's `rpe_biases`: `[(2 h - 1) (2 w - 1), 2]` offsets (dy, dx), dy outer."""
  h, w = window
  dy, dx = np.meshgrid(np.arange(1 - h, h), np.arange(1 - w, w), indexing="ij")
  return np.stack([dy.ravel(), dx.ravel()], axis=1).astype(np.float32)


def relative_position_index(window: tuple[int, int]) -> np.ndarray:
  """torch's `relative_position_index`: `[T, T]` rows of `position_offsets`, T = h w."""
  h, w = window
  coords = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij")).reshape(2, -1)
  rel = coords[:, :, None] - coords[:, None, :]
  return (rel[0] + h - 1) * (2 * w - 1) + rel[1] + w - 1


def window_mask(size: int, window: tuple[int, int]) -> np.ndarray:
  """torch's `attn_mask_<i>` of a `size` x `size` image: `[nW, T, T]`, -100 between tokens of
  different regions of a window shifted by half of it, else 0."""

  def regions(size_i: int, shift: int) -> np.ndarray:
    i = np.arange(size)
    return ((i >= size - size_i).astype(int) + (i >= size - shift)) if shift else 0 * i

  h, w = window
  ids = regions(h, h // 2)[:, None] * 3 + regions(w, w // 2)[None, :]
  ids = ids.reshape(size // h, h, size // w, w).transpose(0, 2, 1, 3).reshape(-1, h * w)
  return np.where(ids[:, None, :] != ids[:, :, None], _MASK_VALUE, 0.0).astype(np.float32)


def _expected_buffer(key: str, hparams: dict) -> Optional[np.ndarray]:
  """The value torch computes for buffer `key`, or None if `key` is no buffer."""
  s0, s1 = hparams["split_size"]
  windows = ((s0, s1), (s1, s0))
  leaf = key.rsplit(".", 1)[-1]
  if leaf in ("rpe_biases", "relative_position_index"):
    window = windows[int(key.split(".attns.")[1].split(".")[0])]
    return (position_offsets if leaf == "rpe_biases" else relative_position_index)(window)
  if leaf in ("attn_mask_0", "attn_mask_1"):
    return window_mask(hparams.get("img_size", 64), windows[int(leaf[-1])])
  return None


def to_jaxsr(state_dict: dict[str, np.ndarray], hparams: dict) -> dict[str, np.ndarray]:
  """The state dict without its buffers (each checked equal to its recomputation); BatchNorm
  statistics stay (they map to 'batch_stats').

  Raises:
    ValueError: a buffer differs from what DAT computes for `hparams` (another architecture
      or a changed one).
  """
  out = {}
  for key, value in state_dict.items():
    expected = _expected_buffer(key, hparams)
    if expected is None:
      out[key] = value
    elif (np.shape(value) != expected.shape
          or not np.array_equal(np.asarray(value, np.float64), expected)):
      raise ValueError(f"{key}: not DAT's buffer for split_size "
                       f"{tuple(hparams['split_size'])}, img_size {hparams.get('img_size', 64)}")
  return out
