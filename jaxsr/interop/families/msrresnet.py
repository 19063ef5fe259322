"""MSRResNet (BasicSR `srresnet_arch.py`): conv_first, body.<i>.conv1/conv2, upconv1
[, upconv2], conv_hr, conv_last."""

from typing import Any, Optional

from jaxsr.interop.shapes import ShapeReader, StateDict

ARCH = "msrresnet"
_KEYS = ("conv_first.weight", "body.0.conv1.weight", "upconv1.weight", "conv_hr.weight",
         "conv_last.weight")


def read(state_dict: StateDict, **overrides) -> dict[str, Any]:
  """num_in_ch, num_out_ch, num_feat, num_block; scale 4 with upconv2, else from upconv1's
  channels (`overrides` win)."""
  read = ShapeReader(ARCH, state_dict)
  num_feat, num_in_ch = read.shape("conv_first.weight")[:2]
  scale = overrides.get("scale") or (
      4 if "upconv2.weight" in state_dict
      else read.ratio_root(read.shape("upconv1.weight")[0], num_feat, "upconv1"))
  hparams = dict(scale=scale, num_in_ch=num_in_ch, num_out_ch=read.shape("conv_last.weight")[0],
                 num_feat=num_feat, num_block=read.count(r"body\.(\d+)\.conv1\.weight"))
  return dict(hparams, **overrides)


def detect(state_dict: StateDict) -> Optional[dict[str, Any]]:
  return read(state_dict) if all(k in state_dict for k in _KEYS) else None


def to_jaxsr(state_dict: StateDict, hparams: dict[str, Any]) -> StateDict:
  del hparams
  return state_dict
