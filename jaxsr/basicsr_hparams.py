"""Hyper-parameters of BasicSR / Real-ESRGAN / SwinIR state dicts, read off their tensor shapes.

`infer_hparams(arch, state_dict)` gives the keyword arguments of the jaxsr model (or
discriminator) whose variables the state dict fills (`convert.state_dict_to_variables`); the few
fields that no shape tells (EDSR res_scale, SRVGG ReLU vs LeakyReLU, U-Net skips, SwinIR
img_range) keep their defaults unless given.
"""

import math
import re
from typing import Any, Dict

from absl import logging
import numpy as np

# --arch -> jaxsr registry name (generators in models.MODELS, discriminators in DISCRIMINATORS).
GENERATOR_ARCHS = ("msrresnet", "edsr", "rrdbnet", "srvgg", "swinir")
DISCRIMINATOR_ARCHS = {"vgg_discriminator": "vgg_style", "unet_discriminator": "unet_sn"}
ARCHS = GENERATOR_ARCHS + tuple(DISCRIMINATOR_ARCHS)

StateDict = Dict[str, np.ndarray]

class _Reader:
  """Shapes of a state dict for `arch`, with errors that name the arch and the missing key."""

  def __init__(self, arch: str, state_dict: StateDict):
    self.arch, self.state_dict = arch, state_dict

  def shape(self, key: str) -> tuple:
    if key not in self.state_dict:
      keys = sorted(self.state_dict)
      raise ValueError(f"Not a BasicSR {self.arch} state dict: no '{key}' (it has "
                       f"{len(keys)} keys: {keys[:6]}{' ...' if len(keys) > 6 else ''})")
    return self.state_dict[key].shape

  def indices(self, pattern: str) -> list:
    """Sorted integers i of the keys matching `pattern` (a regex with one `(\\d+)` group)."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in self.state_dict if (m := regex.fullmatch(k))})

  def count(self, pattern: str) -> int:
    """Number of blocks `pattern` matches; ValueError unless they are numbered 0..n-1."""
    found = self.indices(pattern)
    if found != list(range(len(found))):
      raise ValueError(f"Not a BasicSR {self.arch} state dict: blocks {pattern} are numbered "
                       f"{found}")
    return len(found)

  def ratio_root(self, channels: int, per: int, what: str) -> int:
    """The integer r with channels == per * r * r (ValueError naming `what` otherwise)."""
    root = math.isqrt(channels // per) if per and channels % per == 0 else 0
    if root < 1 or per * root * root != channels:
      raise ValueError(f"{self.arch}: cannot read the scale from {what} ({channels} channels "
                       f"for {per} per unit); pass it (--scale)")
    return root


def infer_hparams(arch: str, state_dict: StateDict, **overrides) -> Dict[str, Any]:
  """Model (or discriminator) keyword arguments of a BasicSR state dict, read off its shapes.

  msrresnet: num_in_ch, num_out_ch, num_feat, num_block; scale 4 with upconv2, else from
  upconv1's channels. edsr: the same, scale from the upsample convs; res_scale cannot be read
  (default 1). rrdbnet: num_feat, num_grow_ch, num_block, num_out_ch; scale from conv_first's
  input channels (pixel-unshuffled by 4 // scale), assuming num_in_ch == num_out_ch unless scale
  or num_in_ch is given. srvgg: num_feat, num_conv, num_in_ch; scale from the last conv's
  channels (num_out_ch * scale^2, num_out_ch = num_in_ch unless given); act_type 'prelu' when
  PReLU weights are there, else 'relu' unless given ('relu' and 'leakyrelu' hold no weights).
  vgg_discriminator: num_in_ch, num_feat; input_size 256 with conv5_0, else 128.
  unet_discriminator: num_in_ch, num_feat; skip_connection (no weights tell) True unless given.
  swinir: see `_swinir_hparams`.

  Args:
    arch: one of `ARCHS`.
    state_dict: flat BasicSR state dict (name -> array, PyTorch layouts).
    **overrides: model fields that win over (and guide) what is read, e.g. scale=2,
      act_type='leakyrelu', res_scale=0.1.

  Returns:
    kwargs for `models.create_model(arch, **kwargs)` (generators, with 'scale') or
    `models.create_discriminator(DISCRIMINATOR_ARCHS[arch], **kwargs)`.

  Raises:
    ValueError: unknown arch, or the state dict lacks a key the arch has (names the key).
  """
  if arch not in ARCHS:
    raise ValueError(f"Unknown BasicSR arch {arch!r}; supported: {list(ARCHS)}")
  read = _Reader(arch, state_dict)
  scale = overrides.get("scale")
  if arch == "vgg_discriminator":
    num_feat, num_in_ch = read.shape("conv0_0.weight")[:2]
    hparams = dict(num_in_ch=num_in_ch, num_feat=num_feat,
                   input_size=256 if "conv5_0.weight" in state_dict else 128)
  elif arch == "unet_discriminator":
    num_feat, num_in_ch = read.shape("conv0.weight")[:2]
    read.shape("conv1.weight_orig")  # Spectral-normalised (a plain U-Net is not this arch).
    hparams = dict(num_in_ch=num_in_ch, num_feat=num_feat, skip_connection=True)
  elif arch in ("msrresnet", "edsr"):
    num_feat, num_in_ch = read.shape("conv_first.weight")[:2]
    if arch == "msrresnet":
      up = read.shape("upconv1.weight")[0]
      scale = scale or (4 if "upconv2.weight" in state_dict
                        else read.ratio_root(up, num_feat, "upconv1"))
    else:  # BasicSR `Upsample`: convs at Sequential indices 0, 2, ... (x2 each) or 0 (x3).
      up = read.shape("upsample.0.weight")[0]
      scale = scale or (3 if up == 9 * num_feat
                        else 2**len(read.indices(r"upsample\.(\d+)\.weight")))
    hparams = dict(scale=scale, num_in_ch=num_in_ch,
                   num_out_ch=read.shape("conv_last.weight")[0], num_feat=num_feat,
                   num_block=read.count(r"body\.(\d+)\.conv1\.weight"))
    if arch == "edsr" and "res_scale" not in overrides:
      logging.info("edsr: res_scale cannot be read from the weights; using 1 (pass "
                   "--res_scale=0.1 for the full EDSR)")
      hparams["res_scale"] = 1.0
  elif arch == "rrdbnet":
    num_feat, in_channels = read.shape("conv_first.weight")[:2]
    num_out_ch = read.shape("conv_last.weight")[0]
    if scale:
      num_in_ch = in_channels // (4 // scale)**2
    else:
      num_in_ch = overrides.get("num_in_ch", num_out_ch)
      unshuffle = read.ratio_root(in_channels, num_in_ch, "conv_first's input")
      if unshuffle not in (1, 2, 4):
        raise ValueError(f"rrdbnet: conv_first takes {in_channels} channels, not "
                         f"{num_in_ch} x 1, 4 or 16; pass --scale")
      scale = 4 // unshuffle
    hparams = dict(scale=scale, num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat,
                   num_block=read.count(r"body\.(\d+)\.rdb1\.conv1\.weight"),
                   num_grow_ch=read.shape("body.0.rdb1.conv1.weight")[0])
  elif arch == "swinir":
    hparams = _swinir_hparams(read, state_dict, overrides)
  else:  # srvgg
    num_feat, num_in_ch = read.shape("body.0.weight")[:2]
    convs = [i for i in read.indices(r"body\.(\d+)\.weight")
             if state_dict[f"body.{i}.weight"].ndim == 4]  # PReLU weights are 1-D.
    last = read.shape(f"body.{convs[-1]}.weight")[0]
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
  hparams.update(overrides)
  return hparams




def _swinir_hparams(read: _Reader, state_dict: StateDict, overrides: Dict[str, Any]
                    ) -> Dict[str, Any]:
  """SwinIR: embed_dim and num_in_ch (conv_first), depths (blocks per layer), num_heads and
  window_size (each layer's relative-position table `[(2 w - 1)^2, heads]`), mlp_ratio (fc1),
  qkv_bias, patch_norm, resi_connection ('3conv' when the closing conv is a Sequential), and the
  upsampler with the scale: 'nearest+conv' (conv_up1; x4 with conv_up2, else x2),
  'pixelshuffle' (conv_before_upsample; x3 for a 9 * num_feat conv, else 2^#convs),
  'pixelshuffledirect' (upsample.0 alone: num_out_ch * scale^2 channels, num_out_ch = num_in_ch
  unless given), else '' (x1). img_range is not in the weights (1, as every released model)."""
  if "absolute_pos_embed" in state_dict:
    raise ValueError("swinir: absolute position embeddings (ape=True) tie the model to one "
                     "image size; jaxsr's SwinIR does not support them")
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
  return dict(hparams, scale=scale, upsampler=upsampler)
