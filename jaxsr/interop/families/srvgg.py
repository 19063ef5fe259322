"""SRVGGNetCompact (Real-ESRGAN `srvgg_arch.py`, OpenModelDB's "Compact"): body.<i> convs
interleaved with activations (PReLU ones hold `weight` [num_feat]), the last conv pixel-shuffled."""

import re
from typing import Any, Optional

from absl import logging

from jaxsr.interop.shapes import ShapeReader, StateDict

ARCH = "srvgg"
_BODY = re.compile(r"body\.\d+\.(weight|bias)")


def read(state_dict: StateDict, **overrides) -> dict[str, Any]:
  """num_feat, num_conv, num_in_ch; scale from the last conv's channels (num_out_ch * scale^2,
  num_out_ch = num_in_ch unless given); act_type 'prelu' when PReLU weights are there, else
  'relu' unless given ('relu' and 'leakyrelu' hold no weights)."""
  read = ShapeReader(ARCH, state_dict)
  num_feat, num_in_ch = read.shape("body.0.weight")[:2]
  convs = [i for i in read.indices(r"body\.(\d+)\.weight")
           if state_dict[f"body.{i}.weight"].ndim == 4]  # PReLU weights are 1-D.
  last = read.shape(f"body.{convs[-1]}.weight")[0]
  scale = overrides.get("scale")
  if scale:
    num_out_ch = last // scale**2
  else:
    num_out_ch = overrides.get("num_out_ch", num_in_ch)
    scale = read.ratio_root(last, num_out_ch, "the last conv")
  act_type = "prelu" if "body.1.weight" in state_dict else "relu"
  if act_type == "relu" and "act_type" not in overrides:
    logging.info("srvgg: no PReLU weights; using act_type='relu' (pass --act_type=leakyrelu "
                 "if the model was trained with LeakyReLU)")
  hparams = dict(scale=scale, num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat,
                 num_conv=len(convs) - 2, act_type=act_type)
  return dict(hparams, **overrides)


def detect(state_dict: StateDict) -> Optional[dict[str, Any]]:
  if "body.0.weight" not in state_dict or not all(_BODY.fullmatch(k) for k in state_dict):
    return None
  return read(state_dict)


def to_jaxsr(state_dict: StateDict, hparams: dict[str, Any]) -> StateDict:
  del hparams
  return state_dict
