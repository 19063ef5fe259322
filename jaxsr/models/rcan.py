"""RCAN (Zhang et al., ECCV 2018): residual channel attention network, as spandrel 0.4.2's
`architectures/RCAN` (the official `RCAN_TrainCode/code/model/rcan.py` plus spandrel's
pixel-unshuffle front end and options).

  x * rgb_range -> sub_mean -> [PixelUnshuffle] -> head conv -> n_resgroups residual groups
  (each: n_resblocks RCABs, a conv, a skip) -> conv -> long skip -> pixel-shuffle upsampler ->
  conv -> add_mean -> / rgb_range.

An RCAB is x + CA(conv(act(conv(x)))), CA the channel attention: features times
sigmoid(conv(relu(conv(global average pool)))), the inner width n_feats // reduction.

The mean shift (`norm=True`) is the official `MeanShift`: two 1x1 convs in the weights
(`sub_mean`, `add_mean`, 3 channels), initialised to the identity and -/+ rgb_range * the DIV2K
mean. The official code meant them frozen, but its `self.requires_grad = False` on the module
froze nothing, so released weights carry trained values: they are loaded and applied as they
are (in float32, as exact multiply-adds), and held constant when jaxsr trains (stop_gradient).

`unshuffle_mod` (spandrel): for scale 1 or 2 the input is reflect-padded at the bottom / right
to a multiple of d = 4 // scale, pixel-unshuffled by d, and the tail upsamples by 4; the output
is cropped to the input size times scale. For scales 3, 4, 8 the option is ignored (spandrel).

Submodules (PyTorch names by `layers.flax_param_path`): sub_mean, add_mean, head_0 (head_1 after
the PixelUnshuffle), body_<g> (a group: body_<b> RCABs {body_0, body_2 convs; body_3 channel
attention {conv_du_0, conv_du_2}}, body_<n_resblocks> conv), body_<n_resgroups> conv,
upsample_<k> (PyTorch `tail.0.<k>`, renamed by `interop.families.rcan.to_jaxsr`), tail_1.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.models import layers
from jaxsr.models import trunk

Dtype = Any

# spandrel's `get_activation` names; 'leaky_relu' has slope 0.2, 'gelu' is the exact (erf) GELU.
ACT_MODES = {
    "relu": nn.relu,
    "leaky_relu": functools.partial(nn.leaky_relu, negative_slope=0.2),
    "elu": nn.elu,
    "silu": nn.silu,
    "gelu": functools.partial(nn.gelu, approximate=False),
    "none": lambda x: x,
}


class MeanShift(nn.Module):
  """The official `MeanShift` (rgb_std = 1): a 1x1 conv `kernel` `[1, 1, 3, 3]`, `bias` `[3]`,
  initialised to y = x + sign * rgb_range * DIV2K mean.

  Attributes:
    sign: -1 (sub_mean) or +1 (add_mean).
    rgb_range: pixel range of the shifted values (255: [0, 255]).
    param_dtype: parameter dtype.
  """
  sign: float
  rgb_range: float
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """`[B, H, W, 3]` -> `[B, H, W, 3]` float32."""
    shift = (np.float32(self.sign * self.rgb_range)
             * np.asarray(layers.DIV2K_RGB_MEAN, np.float32))
    kernel = self.param("kernel", lambda _, shape, dtype: jnp.eye(3, dtype=dtype).reshape(shape),
                        (1, 1, 3, 3), self.param_dtype)
    bias = self.param("bias", lambda _, shape, dtype: jnp.asarray(shift, dtype), (3,),
                      self.param_dtype)
    kernel = jax.lax.stop_gradient(kernel.astype(jnp.float32))[0, 0]  # [in, out]
    bias = jax.lax.stop_gradient(bias.astype(jnp.float32))
    x = x.astype(jnp.float32)
    # Elementwise, not a matmul: no reduced-precision (TF32) dot on GPUs; with the identity
    # kernel every term but one is zero, so the result is that of PyTorch's conv bit for bit.
    y = x[..., 0:1] * kernel[0] + x[..., 1:2] * kernel[1] + x[..., 2:3] * kernel[2]
    return y + bias


class ChannelAttention(layers.LayerFactory):
  """The official `CALayer`: x * sigmoid(conv_du_2(relu(conv_du_0(mean over H, W of x)))).

  The pooling, both 1x1 convs and the sigmoid run in float32 (one pixel per image).

  Attributes:
    reduction: inner width = channels // reduction.
    dtype: computation dtype of the product.
    param_dtype: parameter dtype.
  """
  reduction: int = 16
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """`[B, H, W, C]` -> `[B, H, W, C]`."""
    channels = x.shape[-1]
    conv = lambda features, name: layers.Conv2d(
        features, kernel_size=1, dtype=jnp.float32, param_dtype=self.param_dtype, name=name)
    y = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True)  # [B, 1, 1, C]
    y = nn.relu(conv(channels // self.reduction, "conv_du_0")(y))
    y = nn.sigmoid(conv(channels, "conv_du_2")(y))
    return x * y.astype(x.dtype)


class RCAB(layers.LayerFactory):
  """Residual channel attention block: x + CA(conv(act(conv(x)))), `[B, H, W, n_feats]`.

  Attributes:
    n_feats: channels.
    kernel_size: conv kernel side.
    reduction: channel attention reduction.
    act_mode: a key of `ACT_MODES`.
    dtype: computation dtype.
    param_dtype: parameter dtype.
  """
  n_feats: int = 64
  kernel_size: int = 3
  reduction: int = 16
  act_mode: str = "relu"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    res = self.conv(self.n_feats, "body_0", kernel_size=self.kernel_size)(x)
    res = self.conv(self.n_feats, "body_2", kernel_size=self.kernel_size)(
        ACT_MODES[self.act_mode](res))
    res = ChannelAttention(self.reduction, dtype=self.dtype, param_dtype=self.param_dtype,
                           name="body_3")(res)
    return res + x


class ResidualGroup(layers.LayerFactory):
  """n_resblocks RCABs (`body_<b>`), a conv (`body_<n_resblocks>`) and a skip:
  `[B, H, W, n_feats]` -> same.

  Attributes: those of `RCAB`, plus
    n_resblocks: RCABs.
    scan_blocks: scan one compiled RCAB over the blocks' parameters (`trunk.apply_blocks`).
    remat: recompute each RCAB's activations in the backward pass.
  """
  n_resblocks: int = 20
  n_feats: int = 64
  kernel_size: int = 3
  reduction: int = 16
  act_mode: str = "relu"
  scan_blocks: bool = True
  remat: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    blocks = [RCAB(n_feats=self.n_feats, kernel_size=self.kernel_size, reduction=self.reduction,
                   act_mode=self.act_mode, dtype=self.dtype, param_dtype=self.param_dtype,
                   name=f"body_{i}")
              for i in range(self.n_resblocks)]
    res = trunk.apply_blocks(self, blocks, x, scan=self.scan_blocks, remat=self.remat)
    return self.conv(self.n_feats, f"body_{self.n_resblocks}", kernel_size=self.kernel_size)(
        res) + x


class RCAN(layers.SRModel):
  """Residual channel attention network (module docstring); the defaults are the paper's RCAN
  (10 groups x 20 RCABs, 64 features, reduction 16): 15,444,667 / 15,629,307 / 15,592,379 /
  15,740,091 parameters at x2 / x3 / x4 / x8 (mean shifts included).

  Attributes:
    scale: upscale factor, one of `SUPPORTED_SCALES`.
    n_resgroups: residual groups.
    n_resblocks: RCABs per group.
    n_feats: feature channels.
    n_colors: image channels (3 when `norm`: the mean shift is RGB).
    rgb_range: with `norm`, pixel values are scaled to [0, rgb_range] around the mean shift
      (the official 255); without `norm` unused (spandrel uses 1).
    norm: the `sub_mean` / `add_mean` mean shift.
    kernel_size: side of every conv but the upsampler's (3x3) and the attention's (1x1).
    reduction: channel attention reduction.
    act_mode: activation inside the RCABs, a key of `ACT_MODES`.
    unshuffle_mod: for scale 1 or 2, a PixelUnshuffle(4 // scale) front end and a x4 tail.
    scan_blocks: compile one residual group and one RCAB, scanned over their parameters
      (`trunk.apply_blocks`; same parameters and values) instead of unrolling them.
    remat: recompute each RCAB's activations in the backward pass instead of keeping them.
    dtype: computation dtype; the mean shifts and the output are float32.
    param_dtype: parameter dtype.
  """
  SUPPORTED_SCALES = (1, 2, 3, 4, 8)

  n_resgroups: int = 10
  n_resblocks: int = 20
  n_feats: int = 64
  n_colors: int = 3
  rgb_range: float = 255.0
  norm: bool = True
  kernel_size: int = 3
  reduction: int = 16
  act_mode: str = "relu"
  unshuffle_mod: bool = False
  scan_blocks: bool = True
  remat: bool = False

  def __post_init__(self):
    if self.act_mode not in ACT_MODES:
      raise ValueError(f"RCAN act_mode must be one of {tuple(ACT_MODES)}, got "
                       f"{self.act_mode!r}")
    if self.norm and self.n_colors != 3:
      raise ValueError(f"RCAN norm=True (the RGB mean shift) needs n_colors=3, got "
                       f"{self.n_colors}")
    if self.kernel_size % 2 != 1:
      raise ValueError(f"RCAN kernel_size must be odd, got {self.kernel_size}")
    super().__post_init__()

  @property
  def downscale_factor(self) -> int:
    """The PixelUnshuffle factor of the front end (1: none)."""
    return 4 // self.scale if self.unshuffle_mod and self.scale <= 2 else 1

  @property
  def input_multiple(self) -> int:
    """Tiles that are multiples of this keep the unshuffle grid of the whole image (the global
    pooling of the channel attention still sees only the tile)."""
    return self.downscale_factor

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Super-resolves `x`.

    Args:
      x: `[B, H, W, n_colors]` in [0, 1], any H, W.
      train: unused (no BatchNorm, no dropout); kept for a uniform model signature.

    Returns:
      `[B, H*scale, W*scale, n_colors]` float32, not clipped.
    """
    del train
    _, height, width, _ = x.shape
    down = self.downscale_factor
    x = x.astype(jnp.float32)
    if down > 1:  # spandrel's `check_img_size` (a no-op for sizes that are multiples).
      x = jnp.pad(x, ((0, 0), (0, -height % down), (0, -width % down), (0, 0)), mode="reflect")
    if self.norm:
      x = MeanShift(-1.0, self.rgb_range, self.param_dtype, name="sub_mean")(
          x * jnp.float32(self.rgb_range))
    head = "head_0"
    if down > 1:
      x, head = layers.pixel_unshuffle(x, down), "head_1"
    x = self.conv(self.n_feats, head, kernel_size=self.kernel_size)(x)

    groups = [ResidualGroup(n_resblocks=self.n_resblocks, n_feats=self.n_feats,
                            kernel_size=self.kernel_size, reduction=self.reduction,
                            act_mode=self.act_mode, scan_blocks=self.scan_blocks,
                            remat=self.remat, dtype=self.dtype, param_dtype=self.param_dtype,
                            name=f"body_{i}")
              for i in range(self.n_resgroups)]
    res = trunk.apply_blocks(self, groups, x, scan=self.scan_blocks)
    res = self.conv(self.n_feats, f"body_{self.n_resgroups}", kernel_size=self.kernel_size)(
        res) + x

    res = layers.pixel_shuffle_upsample(self.conv, res, self.scale * down, "upsample")
    out = self.conv(self.n_colors, "tail_1", kernel_size=self.kernel_size)(res)
    out = out.astype(jnp.float32)
    if self.norm:
      out = MeanShift(1.0, self.rgb_range, self.param_dtype, name="add_mean")(out)
      out = out / jnp.float32(self.rgb_range)
    return out[:, :height * self.scale, :width * self.scale]
