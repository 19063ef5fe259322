"""HAT (the official `hat_arch.py` names, as spandrel 0.4.2 reads them): conv_first,
patch_embed.norm, layers.<i>.residual_group.blocks.<j>.{norm1, attn, conv_block.cab.{0, 2,
3.attention.{1, 3}}, norm2, mlp}, layers.<i>.residual_group.overlap_attn, layers.<i>.conv, norm,
conv_after_body, conv_before_upsample.0, upsample.<k>, conv_last; the top-level buffers
`relative_position_index_SA` and `relative_position_index_OCA` (checked, jaxsr computes them).
The names map onto `jaxsr.models.hat.HAT` as they are."""

import math
from typing import Any, Optional

import numpy as np

from jaxsr.interop.shapes import ShapeReader, StateDict
from jaxsr.models import hat

ARCH = "hat"
_FIRST = "layers.0.residual_group.blocks.0."
_KEYS = ("conv_first.weight", _FIRST + "norm1.weight", _FIRST + "conv_block.cab.0.weight",
         _FIRST + "conv_block.cab.3.attention.1.weight",
         _FIRST + "attn.relative_position_bias_table",
         "layers.0.residual_group.overlap_attn.relative_position_bias_table",
         "layers.0.residual_group.overlap_attn.qkv.weight", "conv_last.weight")
# spandrel's _get_overlap_ratio: the ratios tried first, as the official configs write them.
_NICE_RATIOS = (0, 1, 0.5, 0.25, 0.75, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9)


def _ratio(read: ShapeReader, embed_dim: int, key: str) -> int:
  """The compress_ratio / squeeze_factor r with embed_dim // r == the channels of `key`."""
  channels = read.shape(key)[0]
  ratio = embed_dim // channels if channels else 0
  if not ratio or embed_dim // ratio != channels:
    raise ValueError(f"{ARCH}: {key} has {channels} channels, not embed_dim {embed_dim} // r "
                     "for any integer r")
  return ratio


def _side(read: ShapeReader, key: str, what: str) -> int:
  rows = read.shape(key)[0]
  side = math.isqrt(rows)
  if side * side != rows:
    raise ValueError(f"{ARCH}: {key} has {rows} rows, not {what}^2")
  return side


def read(state_dict: StateDict, **overrides) -> dict[str, Any]:
  """in_chans and embed_dim (conv_first), depths (blocks per layer), num_heads (each layer's
  OCAB table), window_size (the HAB table `[(2 w - 1)^2, heads]`), overlap_ratio (the OCAB
  table `[(w + ow - 1)^2, heads]`, ow = w + int(w * ratio); the first of spandrel's 'nice'
  ratios that gives ow), compress_ratio and squeeze_factor (CAB and channel attention widths),
  mlp_ratio (fc1), qkv_bias, patch_norm, resi_connection ('identity' without conv_after_body),
  num_feat (conv_last) and the scale (x3 for a 9 * num_feat upsample conv, else 2^#convs; 1
  without). conv_scale and img_range are not in the weights (0.01 and 1, as every released
  model)."""
  if "absolute_pos_embed" in state_dict:
    raise ValueError("hat: absolute position embeddings (ape=True) tie the model to one image "
                     "size; jaxsr's HAT does not support them")
  read = ShapeReader(ARCH, state_dict)
  embed_dim, in_chans = read.shape("conv_first.weight")[:2]
  num_layers = read.count(r"layers\.(\d+)\.residual_group\.blocks\.0\.norm1\.weight")
  depths = tuple(read.count(rf"layers\.{i}\.residual_group\.blocks\.(\d+)\.norm1\.weight")
                 for i in range(num_layers))
  num_heads = tuple(
      int(read.shape(f"layers.{i}.residual_group.overlap_attn.relative_position_bias_table")[1])
      for i in range(num_layers))
  sa_side = _side(read, _FIRST + "attn.relative_position_bias_table", "(2 window - 1)")
  window = (sa_side + 1) // 2
  if sa_side % 2 == 0:
    raise ValueError(f"{ARCH}: a relative position table of {sa_side}^2 rows is not "
                     "(2 window - 1)^2")
  oca_side = _side(read, "layers.0.residual_group.overlap_attn.relative_position_bias_table",
                   "(window + overlap window - 1)")
  overlap_window = oca_side + 1 - window
  ratios = [r for r in _NICE_RATIOS if hat.overlap_window_size(window, r) == overlap_window]
  # Else spandrel's nudge above the rounding of int(window * ratio).
  overlap_ratio = float(ratios[0]) if ratios else (overlap_window - window) / window + 0.01
  num_feat = read.shape("conv_last.weight")[1]
  upsample = read.indices(r"upsample\.(\d+)\.weight")
  if upsample and read.shape("upsample.0.weight")[0] == 9 * num_feat:
    scale = 3
  else:
    scale = 2**len(upsample)
  hparams = dict(
      scale=scale, in_chans=in_chans, embed_dim=embed_dim, depths=depths, num_heads=num_heads,
      window_size=window, overlap_ratio=overlap_ratio,
      compress_ratio=_ratio(read, embed_dim, _FIRST + "conv_block.cab.0.weight"),
      squeeze_factor=_ratio(read, embed_dim, _FIRST + "conv_block.cab.3.attention.1.weight"),
      mlp_ratio=read.shape(_FIRST + "mlp.fc1.weight")[0] / embed_dim,
      qkv_bias=_FIRST + "attn.qkv.bias" in state_dict,
      patch_norm="patch_embed.norm.weight" in state_dict,
      resi_connection="1conv" if "conv_after_body.weight" in state_dict else "identity",
      num_feat=num_feat)
  return dict(hparams, **overrides)


def detect(state_dict: StateDict) -> Optional[dict[str, Any]]:
  if not all(k in state_dict for k in _KEYS):
    return None
  return read(state_dict)


def _check_buffer(state_dict: StateDict, key: str, expected: np.ndarray) -> None:
  if key in state_dict and not np.array_equal(state_dict[key], expected):
    raise ValueError(f"{key} {tuple(np.shape(state_dict[key]))} is not HAT's relative position "
                     f"index {expected.shape} of the hyper-parameters read off the weights; the "
                     "file holds another architecture")


def to_jaxsr(state_dict: StateDict, hparams: dict[str, Any]) -> StateDict:
  """Without the buffers `relative_position_index_SA` / `_OCA`, checked (when present) against
  `hat.relative_position_index` / `hat.oca_relative_position_index` of `hparams`' window and
  overlap, which jaxsr computes; every other key as it is."""
  window = hparams.get("window_size", hat.HAT.window_size)
  overlap = hat.overlap_window_size(window, hparams.get("overlap_ratio", hat.HAT.overlap_ratio))
  _check_buffer(state_dict, "relative_position_index_SA", hat.relative_position_index(window))
  _check_buffer(state_dict, "relative_position_index_OCA",
                hat.oca_relative_position_index(window, overlap))
  return {k: v for k, v in state_dict.items()
          if k not in ("relative_position_index_SA", "relative_position_index_OCA")}
