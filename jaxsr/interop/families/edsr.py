"""EDSR in BasicSR's layout (`edsr_arch.py`): conv_first, body.<i>.conv1/conv2,
conv_after_body, upsample.<0, 2, ...>, conv_last; the mean shift is not in the weights."""

from typing import Any, Optional

from absl import logging

from jaxsr.interop.shapes import ShapeReader, StateDict

ARCH = "edsr"
_KEYS = ("conv_first.weight", "body.0.conv1.weight", "conv_after_body.weight",
         "upsample.0.weight", "conv_last.weight")


def read(state_dict: StateDict, **overrides) -> dict[str, Any]:
  """num_in_ch, num_out_ch, num_feat, num_block, scale from the upsample convs (BasicSR
  `Upsample`: convs at Sequential indices 0, 2, ... (x2 each) or 0 (x3)); res_scale is not in
  the weights (1 unless given; the full EDSR uses 0.1)."""
  read = ShapeReader(ARCH, state_dict)
  num_feat, num_in_ch = read.shape("conv_first.weight")[:2]
  up = read.shape("upsample.0.weight")[0]
  scale = overrides.get("scale") or (
      3 if up == 9 * num_feat else 2**len(read.indices(r"upsample\.(\d+)\.weight")))
  hparams = dict(scale=scale, num_in_ch=num_in_ch, num_out_ch=read.shape("conv_last.weight")[0],
                 num_feat=num_feat, num_block=read.count(r"body\.(\d+)\.conv1\.weight"))
  if "res_scale" not in overrides:
    logging.info("edsr: res_scale cannot be read from the weights; using 1 (pass "
                 "--res_scale=0.1 for the full EDSR)")
    hparams["res_scale"] = 1.0
  return dict(hparams, **overrides)


def detect(state_dict: StateDict) -> Optional[dict[str, Any]]:
  return read(state_dict) if all(k in state_dict for k in _KEYS) else None


def to_jaxsr(state_dict: StateDict, hparams: dict[str, Any]) -> StateDict:
  del hparams
  return state_dict
