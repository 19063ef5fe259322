"""RRDBNet, the ESRGAN generator, in its three layouts (OpenModelDB's "ESRGAN"):

- BasicSR / Real-ESRGAN: conv_first, body.<i>.rdb<k>.conv<j>, conv_body, conv_up1, conv_up2,
  conv_hr, conv_last (x2 / x1 models pixel-unshuffle their input by 2 / 4);
- BSRGAN / RealSR: conv_first, RRDB_trunk.<i>.RDB<k>.conv<j>, trunk_conv, upconv<n>, HRconv,
  conv_last;
- the original ESRGAN repository's: model.0 (conv_first), model.1.sub.<i>.RDB<k>.conv<j>.0
  (the blocks), model.1.sub.<num_block> (conv_body), model.3, model.6, ... (one nearest x2 +
  conv per stage: x1, x2, x4 or x8), model.<3n+2> (conv_hr), model.<3n+4> (conv_last); an input
  with 4 or 16 times the output channels is pixel-unshuffled by 2 or 4 (Real-ESRGAN x2 / x1).

`to_jaxsr` renames every layout to BasicSR's names, which jaxsr's RRDBNet uses. ESRGAN+ (the
`conv1x1` blocks) is not supported.
"""

import re
from typing import Any, Optional

from jaxsr.interop.shapes import ShapeReader, StateDict

ARCH = "rrdbnet"

_OLD_BLOCK = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)")
_OLD_TOP = re.compile(r"model\.(\d+)\.(weight|bias)")
_BSRGAN = {"trunk_conv": "conv_body", "HRconv": "conv_hr"}
_BSRGAN_BLOCK = re.compile(r"RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias)")
_UPCONV = re.compile(r"upconv(\d)\.(weight|bias)")


def layout(state_dict: StateDict) -> Optional[str]:
  """'basicsr', 'bsrgan', 'esrgan' (the original repository's) or None."""
  if "model.0.weight" in state_dict and "model.1.sub.0.RDB1.conv1.0.weight" in state_dict:
    return "esrgan"
  if "conv_first.weight" in state_dict and "RRDB_trunk.0.RDB1.conv1.weight" in state_dict:
    return "bsrgan"
  if all(k in state_dict for k in ("conv_first.weight", "body.0.rdb1.conv1.weight",
                                   "conv_body.weight", "conv_last.weight")):
    return "basicsr"
  return None


def _old_to_basicsr(state_dict: StateDict) -> StateDict:
  top = {}
  for key in state_dict:
    if m := _OLD_TOP.fullmatch(key):
      top.setdefault(int(m.group(1)), []).append(m.group(2))
  stages = (max(top) - 4) // 3
  names = {0: "conv_first", 3 * stages + 2: "conv_hr", 3 * stages + 4: "conv_last",
           **{3 * i: f"conv_up{i}" for i in range(1, stages + 1)}}
  num_block = max(int(m.group(1)) for k in state_dict if (m := _OLD_BLOCK.fullmatch(k))) + 1
  out = {}
  for key, value in state_dict.items():
    if m := _OLD_BLOCK.fullmatch(key):
      block, rdb, conv, leaf = m.groups()
      out[f"body.{block}.rdb{rdb}.conv{conv}.{leaf}"] = value
    elif key.startswith(f"model.1.sub.{num_block}."):
      out["conv_body." + key.rpartition(".")[2]] = value
    elif (m := _OLD_TOP.fullmatch(key)) and int(m.group(1)) in names:
      out[f"{names[int(m.group(1))]}.{m.group(2)}"] = value
    else:
      out[key] = value  # reported as unexpected by the mapper
  return out


def _bsrgan_to_basicsr(state_dict: StateDict) -> StateDict:
  out = {}
  for key, value in state_dict.items():
    module, _, leaf = key.rpartition(".")
    if m := _BSRGAN_BLOCK.fullmatch(key):
      out[f"body.{m.group(1)}.rdb{m.group(2)}.conv{m.group(3)}.{m.group(4)}"] = value
    elif m := _UPCONV.fullmatch(key):
      out[f"conv_up{m.group(1)}.{m.group(2)}"] = value
    else:
      out[f"{_BSRGAN.get(module, module)}.{leaf}"] = value
  return out


def to_basicsr_names(state_dict: StateDict) -> StateDict:
  """Any layout's state dict under BasicSR's names."""
  kind = layout(state_dict)
  if any(".conv1x1." in k for k in state_dict):
    raise ValueError("rrdbnet: ESRGAN+ weights (RDB blocks with conv1x1) are not supported")
  if kind == "esrgan":
    return _old_to_basicsr(state_dict)
  if kind == "bsrgan":
    return _bsrgan_to_basicsr(state_dict)
  return state_dict


def read(state_dict: StateDict, **overrides) -> dict[str, Any]:
  """num_feat, num_grow_ch, num_block, num_out_ch; the trunk's upsampling (2 ^ upsampling
  convs; 'trunk_scale', given only when not RRDBNet's default, 4 or 8 for x8) and the pixel-unshuffle in front, read
  from conv_first's input channels (num_in_ch * 1, 4 or 16, num_in_ch == num_out_ch unless
  given; `overrides` win) give the scale."""
  state_dict = to_basicsr_names(state_dict)
  read = ShapeReader(ARCH, state_dict)
  num_feat, in_channels = read.shape("conv_first.weight")[:2]
  num_out_ch = read.shape("conv_last.weight")[0]
  trunk_scale = 2**len(read.indices(r"conv_up(\d+)\.weight"))
  scale = overrides.get("scale")
  if scale:
    num_in_ch = in_channels // max(trunk_scale // scale, 1)**2
  else:
    num_in_ch = overrides.get("num_in_ch", num_out_ch)
    unshuffle = read.ratio_root(in_channels, num_in_ch, "conv_first's input")
    if unshuffle not in (1, 2, 4) or trunk_scale % unshuffle:
      raise ValueError(f"rrdbnet: conv_first takes {in_channels} channels, not "
                       f"{num_in_ch} x 1, 4 or 16; pass --scale")
    scale = trunk_scale // unshuffle
  hparams = dict(scale=scale, num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat,
                 num_block=read.count(r"body\.(\d+)\.rdb1\.conv1\.weight"),
                 num_grow_ch=read.shape("body.0.rdb1.conv1.weight")[0])
  if trunk_scale != max(4, scale):  # RRDBNet's default trunk
    hparams["trunk_scale"] = trunk_scale
  return dict(hparams, **overrides)


def detect(state_dict: StateDict) -> Optional[dict[str, Any]]:
  return read(state_dict) if layout(state_dict) else None


def to_jaxsr(state_dict: StateDict, hparams: dict[str, Any]) -> StateDict:
  del hparams
  return to_basicsr_names(state_dict)
