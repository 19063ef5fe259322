"""SwinIR (BasicSR `swinir_arch.py` = the official `network_swinir.py` names): conv_first,
patch_embed.norm, layers.<i>.residual_group.blocks.<j>.{norm1, attn, norm2, mlp},
layers.<i>.conv, norm, conv_after_body, the upsampler's convs; buffers
`relative_position_index` (checked, jaxsr computes it) and `attn_mask` (dropped)."""

import math
from typing import Any, Optional

import numpy as np

from jaxsr.interop.shapes import ShapeReader, StateDict
from jaxsr.models import swinir

ARCH = "swinir"
_KEYS = ("conv_first.weight", "layers.0.residual_group.blocks.0.norm1.weight",
         "layers.0.residual_group.blocks.0.mlp.fc1.bias",
         "layers.0.residual_group.blocks.0.attn.relative_position_bias_table")
# Keys of look-alike families (HAT's conv blocks and OCAB, Swin2SR's scaled cosine attention).
_OTHERS = (".conv_block.", "overlap_attn", "logit_scale", "cpb_mlp")


def read(state_dict: StateDict, **overrides) -> dict[str, Any]:
  """embed_dim and num_in_ch (conv_first), depths (blocks per layer), num_heads and
  window_size (each layer's relative-position table `[(2 w - 1)^2, heads]`), mlp_ratio (fc1),
  qkv_bias, patch_norm, resi_connection ('3conv' when the closing conv is a Sequential), and the
  upsampler with the scale: 'nearest+conv' (conv_up1; x4 with conv_up2, else x2),
  'pixelshuffle' (conv_before_upsample; x3 for a 9 * num_feat conv, else 2^#convs),
  'pixelshuffledirect' (upsample.0 alone: num_out_ch * scale^2 channels, num_out_ch = num_in_ch
  unless given), else '' (x1). img_range is not in the weights (1, as every released model)."""
  if "absolute_pos_embed" in state_dict:
    raise ValueError("swinir: absolute position embeddings (ape=True) tie the model to one "
                     "image size; jaxsr's SwinIR does not support them")
  read = ShapeReader(ARCH, state_dict)
  embed_dim, num_in_ch = read.shape("conv_first.weight")[:2]
  num_layers = read.count(r"layers\.(\d+)\.residual_group\.blocks\.0\.norm1\.weight")
  depths = tuple(read.count(rf"layers\.{i}\.residual_group\.blocks\.(\d+)\.norm1\.weight")
                 for i in range(num_layers))
  tables = [read.shape(f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table")
            for i in range(num_layers)]
  side = math.isqrt(tables[0][0])
  if side * side != tables[0][0] or side % 2 == 0:
    raise ValueError(f"swinir: a relative position table of {tables[0][0]} rows is not "
                     "(2 window - 1)^2")
  first = "layers.0.residual_group.blocks.0."
  hparams = dict(num_in_ch=num_in_ch, embed_dim=embed_dim, depths=depths,
                 num_heads=tuple(int(t[1]) for t in tables), window_size=(side + 1) // 2,
                 mlp_ratio=read.shape(first + "mlp.fc1.weight")[0] / embed_dim,
                 qkv_bias=first + "attn.qkv.bias" in state_dict,
                 patch_norm="patch_embed.norm.weight" in state_dict,
                 resi_connection="3conv" if "conv_after_body.0.weight" in state_dict
                 else "1conv")
  scale = overrides.get("scale")
  if "conv_up1.weight" in state_dict:
    upsampler = "nearest+conv"
    scale = scale or (4 if "conv_up2.weight" in state_dict else 2)
  elif "conv_before_upsample.0.weight" in state_dict:
    upsampler = "pixelshuffle"
    num_feat = read.shape("conv_before_upsample.0.weight")[0]
    scale = scale or (3 if read.shape("upsample.0.weight")[0] == 9 * num_feat
                      else 2**len(read.indices(r"upsample\.(\d+)\.weight")))
  elif "upsample.0.weight" in state_dict:
    upsampler = "pixelshuffledirect"
    out = read.shape("upsample.0.weight")[0]
    num_out_ch = overrides.get("num_out_ch", num_in_ch)
    scale = scale or read.ratio_root(out, num_out_ch, "upsample.0")
    hparams["num_out_ch"] = out // scale**2
  else:
    upsampler, scale = "", scale or 1
  if upsampler in ("pixelshuffle", "nearest+conv"):
    hparams["num_feat"] = read.shape("conv_before_upsample.0.weight")[0]
  if upsampler != "pixelshuffledirect":
    hparams["num_out_ch"] = read.shape("conv_last.weight")[0]
  return dict(hparams, scale=scale, upsampler=upsampler, **overrides)


def detect(state_dict: StateDict) -> Optional[dict[str, Any]]:
  if not all(k in state_dict for k in _KEYS) or any(
      other in k for k in state_dict for other in _OTHERS):
    return None
  return read(state_dict)


def to_jaxsr(state_dict: StateDict, hparams: dict[str, Any]) -> StateDict:
  """Without the buffers: `relative_position_index` (checked against
  `swinir.relative_position_index`, which jaxsr computes) and `attn_mask` (recomputed for each
  input size)."""
  del hparams
  kept = {}
  for key, value in state_dict.items():
    leaf = key.rpartition(".")[2]
    if leaf == "relative_position_index":
      window = math.isqrt(value.shape[0])
      if not np.array_equal(value, swinir.relative_position_index(window)):
        raise ValueError(f"{key} is not SwinIR's relative position index of a {window}x{window}"
                         " window; the file holds another architecture")
    elif leaf != "attn_mask":
      kept[key] = value
  return kept
