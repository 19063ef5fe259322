"""Real-ESRGAN's U-Net discriminator with spectral norm (`UNetDiscriminatorSN`): conv0, then
spectral-normalised conv1 .. conv9 (`weight_orig`, `weight_u`, `weight_v`)."""

from typing import Any, Optional

from jaxsr.interop.shapes import ShapeReader, StateDict

ARCH = "unet_discriminator"
DISCRIMINATOR = "unet_sn"  # jaxsr.models.DISCRIMINATORS name
_KEYS = ("conv0.weight", "conv1.weight_orig", "conv9.weight")


def read(state_dict: StateDict, **overrides) -> dict[str, Any]:
  """num_in_ch, num_feat; skip_connection (no weights tell) True unless given."""
  read = ShapeReader(ARCH, state_dict)
  num_feat, num_in_ch = read.shape("conv0.weight")[:2]
  read.shape("conv1.weight_orig")  # Spectral-normalised (a plain U-Net is not this arch).
  return dict(dict(num_in_ch=num_in_ch, num_feat=num_feat, skip_connection=True), **overrides)


def detect(state_dict: StateDict) -> Optional[dict[str, Any]]:
  return read(state_dict) if all(k in state_dict for k in _KEYS) else None


def to_jaxsr(state_dict: StateDict, hparams: dict[str, Any]) -> StateDict:
  del hparams
  return state_dict
