"""PLKSR (Lee et al., "Partial Large Kernel CNNs for Efficient Super-Resolution", 2024) and
RealPLKSR (dslisleedh's variant for real-world SR, with traiNNer-redux's LayerNorm and DySample
options): spandrel 0.4.2's `architectures/PLKSR`.

Both are a conv, `n_blocks` PLK blocks and a conv at LR resolution, plus the input repeated
scale^2 times along channels, then PixelShuffle (or DySample). A PLK block is
  x + refine(EA(PLKConv(channel_mixer(x))))           (PLKSR)
  x + norm(refine(EA(PLKConv(channel_mixer(LN(x))))))  (RealPLKSR; GroupNorm or LayerNorm)
with PLKConv a large-kernel conv on the first int(dim * split_ratio) channels only, EA
element-wise attention x * sigmoid(conv3x3(x)). Convolutions only: any input size is exact.

Submodules (spandrel's names, imported by `layers.flax_param_path`; the `feats` Sequential's
entries are `feats_<i>`): feats_0 (conv), feats_<1..n_blocks>/{layer_norm, channe_mixer_0,
channe_mixer_2 (PLKSR's spelling; RealPLKSR: channel_mixer_*), lk/{conv | convs_<i> | mn_conv,
nm_conv, nn_conv}, attn/f_0, refine, norm}, feats_<n_blocks + 1> (PLKSR's last conv; RealPLKSR's
Dropout2d, no parameters), feats_<n_blocks + 2> (RealPLKSR's last conv), to_img/{offset, scope,
end_conv} (DySample). Norms hold `scale` / `bias` (torch weight / bias). DySample's `init_pos`
buffer is recomputed (`dysample_init_pos`), not a variable.
"""

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.models import layers
from jaxsr.models import trunk

Dtype = Any

CCM_TYPES = ("CCM", "ICCM", "DCCM")
LK_TYPES = ("PLK", "SparsePLK", "RectSparsePLK")
# Kernel sizes (first conv, second conv) of each channel mixer; the hidden width is 2 * dim.
CCM_KERNELS = {"CCM": (3, 1), "ICCM": (1, 3), "DCCM": (3, 3)}
_GROUP_NORM_EPS = 1e-5  # torch nn.GroupNorm.
_LAYER_NORM_EPS = 1e-6  # RealPLKSR's channel LayerNorm.
_trunc_normal = nn.initializers.truncated_normal(0.02)  # spandrel's trunc_normal_(std=0.02).


class Conv(nn.Module):
  """PyTorch `nn.Conv2d`, stride 1, zero padding `(k // 2) * dilation` per side: any kernel
  `(kh, kw)` and dilation (`layers.Conv2d` is the square undilated case; odd square kernels go
  through its fast path). Parameters `kernel` `[kh, kw, in, out]` and `bias` `[out]`.

  Attributes:
    features: output channels.
    kernel_size: k or (kh, kw).
    dilation: kernel dilation.
    use_bias: whether there is a `bias`.
    trunc_init: kernel init N(0, 0.02) truncated (spandrel's `trunc_normal_`), else PyTorch's.
    zero_init: kernel init 0 (DySample's `scope`); wins over `trunc_init`.
    dtype: computation dtype.
    param_dtype: parameter dtype.
  """
  features: int
  kernel_size: int | tuple[int, int] = 3
  dilation: int = 1
  use_bias: bool = True
  trunc_init: bool = False
  zero_init: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """`[B, H, W, in]` -> `[B, H', W', features]` in `dtype` (H' = H for odd kernels)."""
    kh, kw = ((self.kernel_size,) * 2 if isinstance(self.kernel_size, int)
              else tuple(self.kernel_size))
    fan_in = kh * kw * x.shape[-1]
    init = (nn.initializers.zeros if self.zero_init else
            _trunc_normal if self.trunc_init else layers.torch_default_kernel_init)
    kernel = self.param("kernel", init, (kh, kw, x.shape[-1], self.features), self.param_dtype)
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    if kh == kw and kh % 2 == 1 and self.dilation == 1:
      y = layers.conv2d(x, kernel)
    else:
      d = self.dilation
      y = jax.lax.conv_general_dilated(
          x, kernel, window_strides=(1, 1),
          padding=((kh // 2 * d,) * 2, (kw // 2 * d,) * 2), rhs_dilation=(d, d),
          dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if self.use_bias:
      bias = self.param("bias", layers.torch_default_bias_init(fan_in), (self.features,),
                        self.param_dtype)
      y = y + bias.astype(self.dtype)
    return y


def mish(x: jax.Array) -> jax.Array:
  """torch `nn.Mish`: x * tanh(softplus(x))."""
  return x * jnp.tanh(jax.nn.softplus(x))


def partial_channels(dim: int, split_ratio: float) -> int:
  """Channels the large kernel sees: `int(dim * split_ratio)`, as spandrel."""
  return int(dim * split_ratio)


def sparse_max_kernel(kernel_size: int, sparse_kernels: Sequence[int],
                      sparse_dilations: Sequence[int]) -> int:
  """SparsePLK's max kernel: the largest of `kernel_size` and the dilated kernels' extents."""
  return max([kernel_size] + [(k - 1) * d + 1 for k, d in zip(sparse_kernels, sparse_dilations)])


class PartialLargeKernel(nn.Module):
  """The large-kernel conv on the first `pdim` channels (the rest pass through): `[B, H, W, C]`
  -> `[B, H, W, C]`.

  lk_type 'PLK': one `kernel_size` conv `conv` (+ its input if `with_idt`); 'SparsePLK': the
  sum of dilated convs `convs_<i>` (sparse_kernels[i], dilation sparse_dilations[i]), plus a
  `sparse_max_kernel(...)` conv if `use_max_kernel`, plus the input if `with_idt`;
  'RectSparsePLK': mn_conv (k x k//3) + nm_conv (k//3 x k) + nn_conv (k//3 x k//3).
  """
  pdim: int
  kernel_size: int
  lk_type: str = "PLK"
  use_max_kernel: bool = False
  sparse_kernels: tuple[int, ...] = (5, 5, 5, 5)
  sparse_dilations: tuple[int, ...] = (1, 2, 3, 4)
  with_idt: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def _conv(self, kernel_size, name: str, dilation: int = 1) -> Conv:
    return Conv(self.pdim, kernel_size, dilation, trunc_init=True, dtype=self.dtype,
                param_dtype=self.param_dtype, name=name)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    part, rest = x[..., :self.pdim], x[..., self.pdim:]
    if self.lk_type == "PLK":
      out = self._conv(self.kernel_size, "conv")(part)
      out = out + part if self.with_idt else out
    elif self.lk_type == "SparsePLK":
      convs = [self._conv(k, f"convs_{i}", d)
               for i, (k, d) in enumerate(zip(self.sparse_kernels, self.sparse_dilations))]
      if self.use_max_kernel:
        size = sparse_max_kernel(self.kernel_size, self.sparse_kernels, self.sparse_dilations)
        convs.append(self._conv(size, f"convs_{len(convs)}"))
      out = part if self.with_idt else None
      for conv in convs:
        out = conv(part) if out is None else out + conv(part)
    else:  # RectSparsePLK.
      m, n = self.kernel_size, self.kernel_size // 3
      out = (self._conv((m, n), "mn_conv")(part) + self._conv((n, m), "nm_conv")(part)
             + self._conv((n, n), "nn_conv")(part))
    return jnp.concatenate([out.astype(x.dtype), rest], axis=-1)


class ElementwiseAttention(nn.Module):
  """EA: x * sigmoid(conv3x3 `f_0`(x)), `[B, H, W, C]`."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    gate = Conv(x.shape[-1], 3, trunc_init=True, dtype=self.dtype,
                param_dtype=self.param_dtype, name="f_0")(x)
    return x * jax.nn.sigmoid(gate)


class PLKBlock(nn.Module):
  """One PLK block (module docstring), `[B, H, W, dim]` -> same shape and dtype.

  Attributes:
    real: RealPLKSR's block (Mish DCCM `channel_mixer_*`, then GroupNorm `norm` or, with
      `layer_norm`, a channel LayerNorm `layer_norm` first) instead of PLKSR's (GELU mixer of
      `ccm_type`, spelt `channe_mixer_*`; no norm).
    Other fields: see `PLKSR` / `RealPLKSR`.
  """
  kernel_size: int
  split_ratio: float
  use_ea: bool = True
  real: bool = False
  ccm_type: str = "DCCM"
  lk_type: str = "PLK"
  use_max_kernel: bool = False
  sparse_kernels: tuple[int, ...] = (5, 5, 5, 5)
  sparse_dilations: tuple[int, ...] = (1, 2, 3, 4)
  with_idt: bool = False
  norm_groups: int = 4
  layer_norm: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def _conv(self, features: int, kernel_size: int, name: str, trunc_init: bool = False):
    return Conv(features, kernel_size, trunc_init=trunc_init, dtype=self.dtype,
                param_dtype=self.param_dtype, name=name)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    dim = x.shape[-1]
    y = x
    if self.real and self.layer_norm:  # Norms in float32.
      y = nn.LayerNorm(_LAYER_NORM_EPS, dtype=jnp.float32, param_dtype=self.param_dtype,
                       use_fast_variance=False, name="layer_norm")(y)
    mixer = "channel_mixer" if self.real else "channe_mixer"
    k1, k2 = CCM_KERNELS["DCCM" if self.real else self.ccm_type]
    y = self._conv(2 * dim, k1, f"{mixer}_0")(y)
    y = mish(y) if self.real else nn.gelu(y, approximate=False)
    y = self._conv(dim, k2, f"{mixer}_2", trunc_init=True)(y)
    y = PartialLargeKernel(
        partial_channels(dim, self.split_ratio), self.kernel_size, self.lk_type,
        self.use_max_kernel, tuple(self.sparse_kernels), tuple(self.sparse_dilations),
        self.with_idt, self.dtype, self.param_dtype, name="lk")(y)
    if self.use_ea:
      y = ElementwiseAttention(self.dtype, self.param_dtype, name="attn")(y)
    y = self._conv(dim, 1, "refine", trunc_init=True)(y)
    if self.real and not self.layer_norm:
      y = nn.GroupNorm(self.norm_groups, epsilon=_GROUP_NORM_EPS, dtype=jnp.float32,
                       param_dtype=self.param_dtype, use_fast_variance=False, name="norm")(y)
    return (y + x).astype(x.dtype)


def dysample_groups(scale: int) -> int:
  """RealPLKSR's DySample groups: 4 for even scales, 3 (the output channels) for odd ones."""
  return 3 if scale % 2 else 4


def dysample_init_pos(scale: int, groups: int) -> np.ndarray:
  """DySample's `init_pos` buffer, `[2 * groups * scale^2]` float32: channel
  c2 * groups * s^2 + g * s^2 + i * s + j holds the sub-pixel offset (j if c2 == 0 else i,
  each (-(s - 1) / 2 + index) / s) of output pixel (i, j) of each LR pixel."""
  h = (np.arange(scale, dtype=np.float32) - (scale - 1) / 2) / scale
  grid = np.stack([np.broadcast_to(h[None, :], (scale, scale)),  # x: varies with j.
                   np.broadcast_to(h[:, None], (scale, scale))])  # y: varies with i.
  return np.broadcast_to(grid[:, None], (2, groups, scale, scale)).reshape(-1).astype(np.float32)


def grid_sample_border(x: jax.Array, gx: jax.Array, gy: jax.Array) -> jax.Array:
  """torch `F.grid_sample(mode='bilinear', padding_mode='border', align_corners=False)`.

  Args:
    x: `[N, H, W, C]` float32.
    gx, gy: `[N, P]` sampling positions normalised to [-1, 1] over the width / height (pixel
      centres at -1 + (2 i + 1) / size); outside, the border pixel's value.

  Returns:
    `[N, P, C]` float32.
  """
  n, h, w, c = x.shape
  # Pixel coordinates (as torch's CPU kernel unnormalises), clipped to the border.
  ix = jnp.clip((gx + 1) * (w / 2) - 0.5, 0, w - 1)
  iy = jnp.clip((gy + 1) * (h / 2) - 0.5, 0, h - 1)
  x0, y0 = jnp.floor(ix), jnp.floor(iy)
  x1, y1 = x0 + 1, y0 + 1
  flat = x.reshape(n, h * w, c)

  def tap(xi, yi):  # A corner past the last pixel has weight 0: clamp its index.
    xi = jnp.minimum(xi, w - 1).astype(jnp.int32)
    yi = jnp.minimum(yi, h - 1).astype(jnp.int32)
    return jnp.take_along_axis(flat, (yi * w + xi)[..., None], axis=1)

  weight = lambda a: a[..., None]
  return (tap(x0, y0) * weight((x1 - ix) * (y1 - iy))
          + tap(x1, y0) * weight((ix - x0) * (y1 - iy))
          + tap(x0, y1) * weight((x1 - ix) * (iy - y0))
          + tap(x1, y1) * weight((ix - x0) * (iy - y0)))


class DySample(nn.Module):
  """DySample upsampling (Liu et al. 2023, spandrel's `DySample`): each of `scale^2` output
  pixels per LR pixel samples (bilinear, border) its channel group at the pixel centre plus a
  learned offset, 0.5 * offset(x) * sigmoid(scope(x)) + init_pos; then a 1x1 conv `end_conv`
  to `out_ch` channels (none at scale 1).

  Attributes:
    scale: upscale factor s.
    groups: channel groups, each with its own offsets (in_channels divisible by it).
    out_ch: output channels of `end_conv`.
    dtype: computation dtype of the convs (offsets and sampling in float32).
    param_dtype: parameter dtype.
  """
  scale: int
  groups: int
  out_ch: int = 3
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """`[B, H, W, C]` float32 -> `[B, sH, sW, out_ch]` (C at scale 1) float32."""
    b, h, w, c = x.shape
    s, g = self.scale, self.groups
    conv = lambda name, **kw: Conv(2 * g * s * s, 1, dtype=self.dtype,
                                   param_dtype=self.param_dtype, name=name, **kw)
    offset = conv("offset", trunc_init=True)(x).astype(jnp.float32)
    scope = conv("scope", use_bias=False, zero_init=True)(x).astype(jnp.float32)
    offset = offset * jax.nn.sigmoid(scope) * 0.5 + dysample_init_pos(s, g)
    offset = offset.reshape(b, h, w, 2, g, s, s)
    # Normalised sampling positions [B, H, W, g, s, s] (as torch computes them), then in the
    # order of the output pixels [B * g, (H, s, W, s)].
    gx = 2 * ((jnp.arange(w, dtype=jnp.float32) + 0.5)[None, None, :, None, None, None]
              + offset[:, :, :, 0]) / w - 1
    gy = 2 * ((jnp.arange(h, dtype=jnp.float32) + 0.5)[None, :, None, None, None, None]
              + offset[:, :, :, 1]) / h - 1
    order = lambda a: a.transpose(0, 3, 1, 4, 2, 5).reshape(b * g, h * s * w * s)
    groups = x.astype(jnp.float32).reshape(b, h, w, g, c // g).transpose(0, 3, 1, 2, 4)
    out = grid_sample_border(groups.reshape(b * g, h, w, c // g), order(gx), order(gy))
    out = out.reshape(b, g, h * s, w * s, c // g).transpose(0, 2, 3, 1, 4)
    out = out.reshape(b, h * s, w * s, c)
    if s != 1:
      out = Conv(self.out_ch, 1, dtype=self.dtype, param_dtype=self.param_dtype,
                 name="end_conv")(out)
    return out.astype(jnp.float32)


class _PLKSRBase(layers.SRModel):
  """What PLKSR and RealPLKSR share: the LR trunk and the residual of the repeated input."""
  SUPPORTED_SCALES = (1, 2, 3, 4, 8)

  def _check(self, errors: list[str]) -> None:
    if partial_channels(self.dim, self.split_ratio) < 1:
      errors.append(f"int(dim * split_ratio) = int({self.dim} * {self.split_ratio}) < 1")
    if errors:
      raise ValueError(f"{type(self).__name__}: " + "; ".join(errors))

  def _block(self, name: str) -> PLKBlock:
    raise NotImplementedError

  @property
  def input_multiple(self) -> int:
    """Convolutions only: any size is exact (tiles of any size keep the whole-image result)."""
    return 1

  def _trunk(self, x: jax.Array, train: bool, dropout: Optional[float] = None) -> jax.Array:
    """feats: conv, blocks, [Dropout2d (RealPLKSR: `dropout` not None),] conv to
    3 * scale^2. `[B, H, W, 3]` float32 -> `[B, H, W, 3 * scale^2]` float32 (before the input
    is added)."""
    feat = Conv(self.dim, 3, trunc_init=True, dtype=self.dtype, param_dtype=self.param_dtype,
                name="feats_0")(x)
    blocks = [self._block(f"feats_{i + 1}") for i in range(self.n_blocks)]
    feat = trunk.apply_blocks(self, blocks, feat, scan=self.scan_blocks, remat=self.remat)
    last = self.n_blocks + 1
    if dropout is not None:  # Dropout2d (no parameters): whole channels, per sample.
      if dropout:
        feat = nn.Dropout(dropout, broadcast_dims=(1, 2), deterministic=not train,
                          name=f"feats_{last}")(feat)
      last += 1
    out = Conv(3 * self.scale**2, 3, trunc_init=True, dtype=self.dtype,
               param_dtype=self.param_dtype, name=f"feats_{last}")(feat)
    return out.astype(jnp.float32)


class PLKSR(_PLKSRBase):
  """PLKSR (module docstring). The released x4 model (dim 64, 28 blocks, kernel 17, DCCM, EA)
  has 7,386,096 parameters; PLKSR-tiny x4 (12 blocks, kernel 13, no EA) 2,370,544.

  Attributes:
    scale: upscale factor (spandrel's `upscaling_factor`), one of `SUPPORTED_SCALES`.
    dim: feature channels.
    n_blocks: PLK blocks.
    ccm_type: channel mixer, one of `CCM_TYPES` (conv 3x3 / 1x1 to 2 dim, GELU, conv 3x3 / 1x1
      back: 'CCM' 3-1, 'ICCM' 1-3, 'DCCM' 3-3).
    kernel_size: large kernel size (SparsePLK: the max kernel's least size).
    split_ratio: the large kernel sees the first int(dim * split_ratio) channels.
    lk_type: one of `LK_TYPES` (see `PartialLargeKernel`).
    use_max_kernel: SparsePLK: add the max kernel conv.
    sparse_kernels: SparsePLK: kernel sizes of the dilated convs.
    sparse_dilations: SparsePLK: their dilations.
    with_idt: PLK / SparsePLK: add the identity to the large-kernel output.
    use_ea: element-wise attention.
    scan_blocks: compile one block and scan it over the blocks' parameters
      (`trunk.apply_blocks`; same parameters and values).
    remat: recompute each block's activations in the backward pass.
    dtype: computation dtype; output float32.
    param_dtype: parameter dtype.
  """
  dim: int = 64
  n_blocks: int = 28
  ccm_type: str = "DCCM"
  kernel_size: int = 17
  split_ratio: float = 0.25
  lk_type: str = "PLK"
  use_max_kernel: bool = False
  sparse_kernels: tuple[int, ...] = (5, 5, 5, 5)
  sparse_dilations: tuple[int, ...] = (1, 2, 3, 4)
  with_idt: bool = False
  use_ea: bool = True
  scan_blocks: bool = True
  remat: bool = False

  def __post_init__(self):
    errors = []
    if self.ccm_type not in CCM_TYPES:
      errors.append(f"ccm_type={self.ccm_type!r} is not one of {CCM_TYPES}")
    if self.lk_type not in LK_TYPES:
      errors.append(f"lk_type={self.lk_type!r} is not one of {LK_TYPES}")
    self._check(errors)
    super().__post_init__()

  def _block(self, name: str) -> PLKBlock:
    return PLKBlock(self.kernel_size, self.split_ratio, self.use_ea, False, self.ccm_type,
                    self.lk_type, self.use_max_kernel, tuple(self.sparse_kernels),
                    tuple(self.sparse_dilations), self.with_idt, dtype=self.dtype,
                    param_dtype=self.param_dtype, name=name)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Super-resolves `x`.

    Args:
      x: `[B, H, W, 3]` in [0, 1], any H, W >= 1.
      train: unused (no dropout or norm statistics); kept for a uniform model signature.

    Returns:
      `[B, H*scale, W*scale, 3]` float32, not clipped.
    """
    x = x.astype(jnp.float32)
    # PixelShuffle(feats + repeat_interleave(x)) = PixelShuffle(feats) + nearest(x).
    return (layers.pixel_shuffle(self._trunk(x, train), self.scale)
            + layers.upsample_nearest(x, self.scale))


class RealPLKSR(_PLKSRBase):
  """RealPLKSR (module docstring). The released x4 models (dim 64, 28 blocks, kernel 17, EA)
  have 7,389,680 parameters (GroupNorm or LayerNorm), 7,402,243 with DySample.

  Attributes:
    scale: upscale factor (spandrel's `upscaling_factor`), one of `SUPPORTED_SCALES`.
    dim: feature channels.
    n_blocks: PLK blocks.
    kernel_size: large kernel size.
    split_ratio: the large kernel sees the first int(dim * split_ratio) channels.
    use_ea: element-wise attention.
    norm_groups: groups of the GroupNorm closing each block (without `layer_norm`); dim must
      be divisible by it. Not visible in a state dict (spandrel assumes 4).
    dropout: Dropout2d rate before the last conv, in training only (needs the 'dropout' rng).
    dysample: upsample with `DySample` (groups `dysample_groups(scale)`) instead of
      PixelShuffle.
    layer_norm: a channel LayerNorm (eps 1e-6) opening each block instead of the GroupNorm
      closing it (traiNNer-redux's default).
    scan_blocks: compile one block and scan it over the blocks' parameters.
    remat: recompute each block's activations in the backward pass.
    dtype: computation dtype (norms, DySample offsets and sampling in float32); output float32.
    param_dtype: parameter dtype.
  """
  dim: int = 64
  n_blocks: int = 28
  kernel_size: int = 17
  split_ratio: float = 0.25
  use_ea: bool = True
  norm_groups: int = 4
  dropout: float = 0.0
  dysample: bool = False
  layer_norm: bool = False
  scan_blocks: bool = True
  remat: bool = False

  def __post_init__(self):
    errors = []
    if not self.layer_norm and (self.norm_groups < 1 or self.dim % self.norm_groups):
      errors.append(f"dim {self.dim} is not divisible by norm_groups {self.norm_groups}")
    if not 0.0 <= self.dropout < 1.0:
      errors.append(f"dropout must be in [0, 1), got {self.dropout}")
    self._check(errors)
    super().__post_init__()

  def _block(self, name: str) -> PLKBlock:
    return PLKBlock(self.kernel_size, self.split_ratio, self.use_ea, True,
                    norm_groups=self.norm_groups, layer_norm=self.layer_norm, dtype=self.dtype,
                    param_dtype=self.param_dtype, name=name)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Super-resolves `x`.

    Args:
      x: `[B, H, W, 3]` in [0, 1], any H, W >= 1.
      train: Dropout2d on (when `dropout` > 0; needs `rngs={'dropout': key}`).

    Returns:
      `[B, H*scale, W*scale, 3]` float32, not clipped.
    """
    x = x.astype(jnp.float32)
    feat = self._trunk(x, train, self.dropout)
    if not self.dysample:
      return layers.pixel_shuffle(feat, self.scale) + layers.upsample_nearest(x, self.scale)
    feat = feat + jnp.repeat(x, self.scale**2, axis=-1)  # torch.repeat_interleave on channels.
    return DySample(self.scale, dysample_groups(self.scale), 3, self.dtype, self.param_dtype,
                    name="to_img")(feat)
