"""BasicSR's VGG-style discriminator (`VGGStyleDiscriminator`): conv0_0 .. conv4_1 (and
conv5_0/conv5_1 for input 256) with BatchNorms, linear1, linear2."""

from typing import Any, Optional

from jaxsr.interop.shapes import ShapeReader, StateDict

ARCH = "vgg_discriminator"
DISCRIMINATOR = "vgg_style"  # jaxsr.models.DISCRIMINATORS name
_KEYS = ("conv0_0.weight", "conv0_1.weight", "bn0_1.running_mean", "linear1.weight")


def read(state_dict: StateDict, **overrides) -> dict[str, Any]:
  """num_in_ch, num_feat; input_size 256 with conv5_0, else 128."""
  num_feat, num_in_ch = ShapeReader(ARCH, state_dict).shape("conv0_0.weight")[:2]
  return dict(num_in_ch=num_in_ch, num_feat=num_feat,
              input_size=256 if "conv5_0.weight" in state_dict else 128, **overrides)


def detect(state_dict: StateDict) -> Optional[dict[str, Any]]:
  return read(state_dict) if all(k in state_dict for k in _KEYS) else None


def to_jaxsr(state_dict: StateDict, hparams: dict[str, Any]) -> StateDict:
  del hparams
  return state_dict
