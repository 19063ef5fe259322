"""DAT (Chen et al., ICCV 2023, "Dual Aggregation Transformer for Image Super-Resolution"):
spandrel 0.4.2's `spandrel/architectures/DAT` (the official `basicsr/archs/dat_arch.py`), with
spandrel's input padding built in. DAT, DAT-S, DAT-2 and DAT-light are configurations of it.

Shallow conv -> LayerNorm -> residual groups (`depth[i]` DAT blocks, a '1conv' / '3conv' closing
conv, plus the group's input) -> LayerNorm -> conv (+ the shallow features) -> upsampler:
  'pixelshuffle'        conv + LeakyReLU(0.01), [conv, PixelShuffle] per x2 (or one x3), conv;
  'pixelshuffledirect'  DAT-light: one conv and PixelShuffle(scale).

DAT block: x + attn(norm1(x)), then x + SGFN(norm2(x)); even blocks attend spatially, odd ones
across channels. Both attentions add a depthwise-conv branch on v and exchange sigmoid gates
with it (the adaptive interaction module, AIM):
  spatial   half the channels attend in split_size[0] x split_size[1] windows, the other half
            in split_size[1] x split_size[0] windows, with a dynamic position bias (an MLP of
            the relative offsets); q, k, v are zero-padded at the bottom / right to a multiple of
            max(split_size) and cropped after. In group i, block b is cyclically shifted by half
            a window when b % 4 == 2 (i even) or b % 4 == 0 (i odd), with the masks of the
            padded size. The conv branch's pooled map gates the attention, the attention's
            spatial map gates the conv branch.
  channel   XCiT's transposed attention: per head, q and k L2-normalised over the tokens, a
            `[head_dim, head_dim]` softmax scaled by a learned temperature; the gates swapped.
SGFN: fc1, GELU, then half the channels times a depthwise conv of the LayerNormed other half,
fc2.

Any input size, as spandrel runs DAT (`SizeRequirements(minimum=16)`): an image smaller than
`min_size` is padded at the bottom / right (reflect, then replicate where reflection runs out),
and the output cropped. Attention windows, padding and masks follow the actual size; `img_size`
changes nothing here.

Submodules (official names, imported by `layers.flax_param_path`): conv_first, before_RG_1,
layers_<i>/blocks_<j>/{norm1, norm2, attn/{qkv, proj, dwconv_0, dwconv_1 (BatchNorm),
channel_interaction_1, _2 (BatchNorm), _4, spatial_interaction_0, _1 (BatchNorm), _3, and
attns_<0|1>/pos/{pos_proj, pos1_0, pos1_2, pos2_0, pos2_2, pos3_0, pos3_2} (spatial) or the
parameter temperature (channel)}, ffn/{fc1, sg/{norm, conv}, fc2}}, layers_<i>/conv (or conv_0,
_2, _4), norm, conv_after_body (or _0, _2, _4), conv_before_upsample_0, upsample_<k>, conv_last.
BatchNorm statistics live in 'batch_stats'. The buffers rpe_biases, relative_position_index and
attn_mask_<0|1> are not variables (`interop.families.dat.to_jaxsr` checks them).
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.models import layers
from jaxsr.models import swinir

Dtype = Any

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect")
RESI_CONNECTIONS = ("1conv", "3conv")
_MASK_VALUE = -100.0  # Added to the logits of token pairs from different shifted regions.
_BN_EPS = 1e-5  # torch nn.BatchNorm2d.
_NORMALIZE_EPS = 1e-12  # torch F.normalize.


def position_offsets(window: tuple[int, int]) -> np.ndarray:
  """`[(2 h - 1) (2 w - 1), 2]` float32 relative offsets (dy, dx), dy outer, for a window
  (h, w): the dynamic position bias MLP's input (torch's `rpe_biases` buffer)."""
  h, w = window
  dy, dx = np.meshgrid(np.arange(1 - h, h), np.arange(1 - w, w), indexing="ij")
  return np.stack([dy.ravel(), dx.ravel()], axis=1).astype(np.float32)


def relative_position_index(window: tuple[int, int]) -> np.ndarray:
  """`[T, T]` index into `position_offsets(window)`, T = h w (torch's
  `relative_position_index` buffer)."""
  h, w = window
  coords = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij")).reshape(2, -1)
  rel = coords[:, :, None] - coords[:, None, :]
  return (rel[0] + h - 1) * (2 * w - 1) + rel[1] + w - 1


def window_partition(x: jax.Array, window: tuple[int, int]) -> jax.Array:
  """`[B, H, W, C]` -> `[B, nW, h w, C]`, windows (h, w) in row-major order (H, W multiples)."""
  b, height, width, c = x.shape
  h, w = window
  x = x.reshape(b, height // h, h, width // w, w, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, (height // h) * (width // w), h * w, c)


def window_reverse(windows: jax.Array, window: tuple[int, int], height: int,
                   width: int) -> jax.Array:
  """Inverse of `window_partition`: `[B, nW, h w, C]` -> `[B, height, width, C]`."""
  b, _, _, c = windows.shape
  h, w = window
  x = windows.reshape(b, height // h, width // w, h, w, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, height, width, c)


def shifted_window_mask(height: int, width: int, window: tuple[int, int],
                        shift: tuple[int, int]) -> jax.Array:
  """`[nW, T, T]` float32: 0 where two tokens of a shifted window come from the same region of
  the un-rolled image, -100 elsewhere (torch's `calculate_mask`; a zero shift makes one region
  along that axis, as torch's slices do)."""

  def regions(n: int, size: int, offset: int) -> jax.Array:
    i = jnp.arange(n)
    if offset == 0:
      return jnp.zeros((n,), jnp.int32)
    return (i >= n - size).astype(jnp.int32) + (i >= n - offset).astype(jnp.int32)

  ids = (regions(height, window[0], shift[0])[:, None] * 3
         + regions(width, window[1], shift[1])[None, :])
  ids = jnp.squeeze(window_partition(ids[None, :, :, None], window), (0, 3))  # [nW, T]
  return jnp.where(ids[:, None, :] != ids[:, :, None], _MASK_VALUE, 0.0).astype(jnp.float32)


def batch_norm(param_dtype: Dtype, name: str, train: bool) -> nn.BatchNorm:
  """torch `nn.BatchNorm2d` (momentum 0.1, eps 1e-5) over the last axis, in float32."""
  return nn.BatchNorm(use_running_average=not train, momentum=layers.TORCH_BN_MOMENTUM,
                      epsilon=_BN_EPS, dtype=jnp.float32, param_dtype=param_dtype, name=name)


class DynamicPosBias(nn.Module):
  """The MLP (no residuals) from relative offsets `[P, 2]` to per-head biases `[P, heads]`:
  pos_proj, then three [LayerNorm, ReLU, Linear] (pos1, pos2, pos3). Float32."""
  num_heads: int
  pos_dim: int
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, offsets: jax.Array) -> jax.Array:
    f32 = jnp.float32
    y = swinir.dense(self.pos_dim, f32, self.param_dtype, "pos_proj")(offsets)
    for k in (1, 2, 3):
      y = nn.relu(swinir.layer_norm(f32, self.param_dtype, f"pos{k}_0")(y))
      y = swinir.dense(self.num_heads if k == 3 else self.pos_dim, f32, self.param_dtype,
                       f"pos{k}_2")(y)
    return y


class WindowAttention(nn.Module):
  """One branch of the spatial attention (torch `Spatial_Attention`): heads attend inside
  (h, w) windows, with a dynamic position bias.

  Attributes:
    num_heads: heads; the channels D must be divisible by it.
    window: (h, w) window; H, W of the inputs must be multiples of it.
    dtype: computation dtype (logits, bias and softmax in float32).
    param_dtype: parameter dtype.
  """
  num_heads: int
  window: tuple[int, int]
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, q: jax.Array, k: jax.Array, v: jax.Array,
               mask: Optional[jax.Array]) -> jax.Array:
    """`q`, `k`, `v` `[B, H, W, D]`, `mask` `[nW, T, T]` or None -> `[B, H, W, D]`."""
    b, height, width, d = q.shape
    heads, window = self.num_heads, tuple(self.window)
    t = window[0] * window[1]
    pos = DynamicPosBias(heads, d // 16, self.param_dtype, name="pos")
    table = pos(jnp.asarray(position_offsets(window)))  # [P, N]
    bias = table[relative_position_index(window)].transpose(2, 0, 1)[None, :, None]
    split = lambda a: window_partition(a, window).reshape(b, -1, t, heads, d // heads)
    scale = jnp.asarray((d // heads)**-0.5, q.dtype)
    logits = jnp.einsum("bwqnd,bwknd->bnwqk", split(q) * scale, split(k),
                        preferred_element_type=jnp.float32) + bias  # [B, N, nW, T, T]
    if mask is not None:
      logits = logits + mask[None, None]
    probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    out = jnp.einsum("bnwqk,bwknd->bwqnd", probs, split(v)).reshape(b, -1, t, d)
    return window_reverse(out, window, height, width)


class _InteractionMixin(layers.LayerFactory):
  """The depthwise-conv branch and the two maps of the adaptive interaction module, shared by
  both attentions (same submodule names). Call from a compact `__call__`."""

  def conv_branch(self, v: jax.Array, train: bool) -> jax.Array:
    """dwconv: depthwise 3x3, BatchNorm, GELU. `[B, H, W, C]`."""
    y = layers.DepthwiseConv2d(True, self.dtype, self.param_dtype, name="dwconv_0")(v)
    y = batch_norm(self.param_dtype, "dwconv_1", train)(y)
    return nn.gelu(y, approximate=False).astype(self.dtype)

  def channel_map(self, x: jax.Array, train: bool) -> jax.Array:
    """Global average pool, 1x1 conv C -> C/8, BatchNorm, GELU, 1x1 conv: `[B, 1, 1, C]`."""
    c = x.shape[-1]
    y = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True).astype(self.dtype)
    y = batch_norm(self.param_dtype, "channel_interaction_2", train)(
        self.conv(c // 8, "channel_interaction_1", kernel_size=1)(y))
    y = nn.gelu(y, approximate=False).astype(self.dtype)
    return self.conv(c, "channel_interaction_4", kernel_size=1)(y)

  def spatial_map(self, x: jax.Array, train: bool) -> jax.Array:
    """1x1 conv C -> C/16, BatchNorm, GELU, 1x1 conv to 1 channel: `[B, H, W, 1]`."""
    y = batch_norm(self.param_dtype, "spatial_interaction_1", train)(
        self.conv(x.shape[-1] // 16, "spatial_interaction_0", kernel_size=1)(x))
    y = nn.gelu(y, approximate=False).astype(self.dtype)
    return self.conv(1, "spatial_interaction_3", kernel_size=1)(y)

  def qkv(self, x: jax.Array, qkv_bias: bool) -> jax.Array:
    """`[B, H, W, C]` -> `[B, H, W, 3, C]` (q, k, v)."""
    b, h, w, c = x.shape
    y = swinir.dense(3 * c, self.dtype, self.param_dtype, "qkv", use_bias=qkv_bias)(
        x.reshape(-1, c))
    return y.reshape(b, h, w, 3, c)

  def proj(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    return swinir.dense(c, self.dtype, self.param_dtype, "proj")(x.reshape(-1, c)).reshape(
        b, h, w, c)


class SpatialAttention(_InteractionMixin):
  """Adaptive spatial self-attention (torch `Adaptive_Spatial_Attention`). `[B, H, W, C]`.

  Attributes:
    num_heads: heads; each half of the channels gets num_heads // 2.
    split_size: (h, w) window of the first half; the second half uses (w, h).
    shifted: roll each half by half its window (and mask across the seams).
    qkv_bias: bias in the qkv projection.
    dtype: computation dtype.
    param_dtype: parameter dtype.
  """
  num_heads: int
  split_size: tuple[int, int]
  shifted: bool = False
  qkv_bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    _, h, w, c = x.shape
    qkv = self.qkv(x, self.qkv_bias)
    multiple = max(self.split_size)
    padded = jnp.pad(qkv, ((0, 0), (0, -h % multiple), (0, -w % multiple), (0, 0), (0, 0)))
    hp, wp = padded.shape[1:3]
    s0, s1 = self.split_size
    halves = []
    for i, window in enumerate(((s0, s1), (s1, s0))):
      shift = (window[0] // 2, window[1] // 2)
      part = padded[..., i * (c // 2):(i + 1) * (c // 2)]
      mask = None
      if self.shifted:
        part = jnp.roll(part, (-shift[0], -shift[1]), axis=(1, 2))
        mask = shifted_window_mask(hp, wp, window, shift)
      y = WindowAttention(self.num_heads // 2, window, self.dtype, self.param_dtype,
                          name=f"attns_{i}")(part[..., 0, :], part[..., 1, :], part[..., 2, :],
                                             mask)
      if self.shifted:
        y = jnp.roll(y, shift, axis=(1, 2))
      halves.append(y[:, :h, :w])
    attended = jnp.concatenate(halves, axis=-1)
    conv_x = self.conv_branch(qkv[..., 2, :], train)
    gate_attended = jax.nn.sigmoid(self.channel_map(conv_x, train))
    gate_conv = jax.nn.sigmoid(self.spatial_map(attended, train))
    return self.proj(attended * gate_attended + gate_conv * conv_x)


class ChannelAttention(_InteractionMixin):
  """Adaptive channel self-attention (torch `Adaptive_Channel_Attention`). `[B, H, W, C]`.

  Attributes:
    num_heads: heads (C divisible by it); `temperature` `[heads, 1, 1]` scales their logits.
    qkv_bias: bias in the qkv projection.
    dtype: computation dtype (normalisation, logits and softmax in float32).
    param_dtype: parameter dtype.
  """
  num_heads: int
  qkv_bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    b, h, w, c = x.shape
    heads = self.num_heads
    qkv = self.qkv(x, self.qkv_bias)
    temperature = self.param("temperature", nn.initializers.ones, (heads, 1, 1),
                             self.param_dtype)
    q, k, v = (qkv[..., i, :].reshape(b, h * w, heads, c // heads) for i in range(3))

    def normalize(a):  # F.normalize over the tokens.
      a = a.astype(jnp.float32)
      return a / jnp.maximum(jnp.linalg.norm(a, axis=1, keepdims=True), _NORMALIZE_EPS)

    logits = jnp.einsum("blnd,blne->bnde", normalize(q), normalize(k))
    probs = jax.nn.softmax(logits * jnp.asarray(temperature, jnp.float32), axis=-1)
    attended = jnp.einsum("bnde,blne->blnd", probs.astype(v.dtype), v).reshape(b, h, w, c)
    conv_x = self.conv_branch(qkv[..., 2, :], train)
    gate_attended = jax.nn.sigmoid(self.spatial_map(conv_x, train))
    gate_conv = jax.nn.sigmoid(self.channel_map(attended, train))
    return self.proj(attended * gate_attended + conv_x * gate_conv)


class SGFN(nn.Module):
  """Spatial-gate feed-forward network: fc1 (C -> hidden), GELU, first half times
  sg/conv(sg/norm(second half)) (depthwise 3x3), fc2 (hidden / 2 -> C). `[B, H, W, C]`."""
  hidden: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    half = self.hidden // 2
    y = swinir.dense(self.hidden, self.dtype, self.param_dtype, "fc1")(x.reshape(-1, c))
    y = nn.gelu(y, approximate=False).reshape(b, h, w, self.hidden)
    gate = SpatialGate(self.dtype, self.param_dtype, name="sg")(y[..., half:])
    y = (y[..., :half] * gate).reshape(-1, half)
    return swinir.dense(c, self.dtype, self.param_dtype, "fc2")(y).reshape(b, h, w, c)


class SpatialGate(nn.Module):
  """norm (LayerNorm) then conv (depthwise 3x3). `[B, H, W, C]`."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = swinir.layer_norm(self.dtype, self.param_dtype, "norm")(x).astype(self.dtype)
    return layers.DepthwiseConv2d(True, self.dtype, self.param_dtype, name="conv")(y)


class DATBlock(nn.Module):
  """x + attn(norm1(x)), x + ffn(norm2(x)) (torch `DATB`). `[B, H, W, C]`. `spatial`: spatial
  attention (even blocks), else channel attention; `shifted`: shifted windows (spatial only);
  `drop_path_rate`: stochastic depth of both branches in training; the rest as in `DAT`."""
  num_heads: int
  split_size: tuple[int, int]
  spatial: bool
  shifted: bool = False
  expansion_factor: float = 4.0
  qkv_bias: bool = True
  drop_path_rate: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    norm = lambda name, y: swinir.layer_norm(self.dtype, self.param_dtype, name)(y).astype(
        self.dtype)
    if self.spatial:
      attn = SpatialAttention(self.num_heads, tuple(self.split_size), self.shifted,
                              self.qkv_bias, self.dtype, self.param_dtype, name="attn")
    else:
      attn = ChannelAttention(self.num_heads, self.qkv_bias, self.dtype, self.param_dtype,
                              name="attn")
    x = x + swinir.drop_path(attn(norm("norm1", x), train), self.drop_path_rate, self, train)
    hidden = int(x.shape[-1] * self.expansion_factor)
    y = SGFN(hidden, self.dtype, self.param_dtype, name="ffn")(norm("norm2", x))
    return x + swinir.drop_path(y, self.drop_path_rate, self, train)


def is_shifted(group: int, block: int) -> bool:
  """Whether block `block` of residual group `group` shifts its windows (spatial blocks only:
  b % 4 == 2 in even groups, b % 4 == 0 in odd ones)."""
  return block % 4 == (2 if group % 2 == 0 else 0)


class ResidualGroup(layers.LayerFactory):
  """x + conv(DAT blocks(x)) (torch `ResidualGroup`). `[B, H, W, C]`. `index` (the group's)
  sets which blocks shift (`is_shifted`); `drop_path_rates` has one entry per block; the other
  fields are `DAT`'s, for this group."""
  index: int
  depth: int
  num_heads: int
  split_size: tuple[int, int]
  expansion_factor: float
  qkv_bias: bool
  drop_path_rates: tuple[float, ...]
  resi_connection: str = "1conv"
  remat: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    block_cls = nn.remat(DATBlock, static_argnums=(2,)) if self.remat else DATBlock
    y = x
    for j in range(self.depth):
      y = block_cls(self.num_heads, tuple(self.split_size), j % 2 == 0,
                    is_shifted(self.index, j), self.expansion_factor, self.qkv_bias,
                    self.drop_path_rates[j], self.dtype, self.param_dtype,
                    name=f"blocks_{j}")(y, train)
    return swinir.closing_conv(self, y, self.resi_connection, "conv") + x


class DAT(layers.SRModel):
  """DAT generator (module docstring). Released x4 models (spandrel's counts): DAT (embed 180,
  depth and heads 6 x 6, split (8, 32), expansion 4) 14,802,051 parameters (paper 14.80M);
  DAT-S (split (8, 16), expansion 2) and DAT-2 (split (8, 32), expansion 2) 11,212,131 (11.21M);
  DAT-light (embed 60, depth (18,), heads (6,), expansion 2, '3conv', 'pixelshuffledirect')
  572,766 (573K).

  Attributes:
    scale: upscale factor (torch `upscale`); 'pixelshuffle' builds 2^n and 3.
    in_chans: input and output channels (3: the DIV2K mean is subtracted; else none).
    embed_dim: token channels C (even, >= 16; below 32 the position-bias MLP is 0 wide: one
      bias per head, as in torch).
    split_size: (h, w) spatial window of the first half of the channels ((w, h) of the other);
      max must be a multiple of min.
    depth: DAT blocks per residual group.
    num_heads: attention heads per residual group (>= 2; spatial halves get num_heads // 2).
    expansion_factor: SGFN hidden width / C (the width must be even).
    qkv_bias: bias in the qkv projections.
    img_size: the training patch size the torch model stores shifted-window masks for; the
      masks are recomputed for every size here, so it changes nothing.
    img_range: inputs are mapped to `(x - mean) * img_range`.
    resi_connection: '1conv' | '3conv'.
    upsampler: one of `UPSAMPLERS`.
    num_feat: channels of the 'pixelshuffle' reconstruction (64 in DAT).
    drop_path_rate: stochastic depth, rising linearly from 0 over all blocks to this; applied
      only with `train=True` and the 'dropout' rng.
    min_size: smaller images are padded to this (spandrel's minimum; 1 runs them as they are,
      as the official test code does).
    remat: recompute each block's activations in the backward pass instead of keeping them.
    dtype: computation dtype (norms, logits and softmax in float32); output float32.
    param_dtype: parameter dtype.
  """
  SUPPORTED_SCALES = (1, 2, 3, 4, 8)

  in_chans: int = 3
  embed_dim: int = 180
  split_size: tuple[int, int] = (8, 32)
  depth: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
  num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
  expansion_factor: float = 4.0
  qkv_bias: bool = True
  img_size: int = 64
  img_range: float = 1.0
  resi_connection: str = "1conv"
  upsampler: str = "pixelshuffle"
  num_feat: int = 64
  drop_path_rate: float = 0.1
  min_size: int = 16
  remat: bool = False

  def __post_init__(self):
    errors = []
    c = self.embed_dim
    if self.upsampler not in UPSAMPLERS:
      errors.append(f"upsampler={self.upsampler!r} is not one of {UPSAMPLERS}")
    if self.resi_connection not in RESI_CONNECTIONS:
      errors.append(f"resi_connection={self.resi_connection!r} is not one of "
                    f"{RESI_CONNECTIONS}")
    if len(self.depth) != len(self.num_heads) or not self.depth:
      errors.append(f"depth {tuple(self.depth)} and num_heads {tuple(self.num_heads)} need "
                    "one entry per residual group")
    if c < 16 or c % 2:
      errors.append(f"embed_dim must be even and >= 16 (the spatial map's width is C / 16), "
                    f"got {c}")
    if any(n < 2 or c % n or (c // 2) % (n // 2) for n in self.num_heads):
      errors.append(f"num_heads {tuple(self.num_heads)}: each must be >= 2 and divide "
                    f"embed_dim {c}, and num_heads // 2 must divide embed_dim / 2")
    if (len(self.split_size) != 2 or min(self.split_size) < 1
        or max(self.split_size) % min(self.split_size)):
      errors.append(f"split_size {tuple(self.split_size)}: two sizes >= 1, the larger a "
                    "multiple of the smaller")
    if int(c * self.expansion_factor) % 2:
      errors.append(f"embed_dim * expansion_factor = {int(c * self.expansion_factor)} must "
                    "be even (the SGFN splits it in halves)")
    if errors:
      raise ValueError("DAT: " + "; ".join(errors))
    super().__post_init__()

  @property
  def input_multiple(self) -> int:
    """1: every size gives spandrel's whole-image output (the model pads itself). Tiles never
    equal the whole image: the channel attention and the pooled gates are global."""
    return 1

  def _mean(self) -> jax.Array:
    return jnp.asarray(layers.DIV2K_RGB_MEAN if self.in_chans == 3 else 0.0, jnp.float32)

  def _features(self, x: jax.Array, train: bool) -> jax.Array:
    """Residual groups between the two LayerNorms. `[B, H, W, C]`."""
    x = swinir.layer_norm(self.dtype, self.param_dtype, "before_RG_1")(x).astype(self.dtype)
    rates = np.linspace(0.0, self.drop_path_rate, sum(self.depth)).tolist()
    start = 0
    for i, (depth, heads) in enumerate(zip(self.depth, self.num_heads)):
      x = ResidualGroup(i, depth, heads, tuple(self.split_size), self.expansion_factor,
                        self.qkv_bias, tuple(rates[start:start + depth]), self.resi_connection,
                        self.remat, self.dtype, self.param_dtype, name=f"layers_{i}")(x, train)
      start += depth
    return swinir.layer_norm(self.dtype, self.param_dtype, "norm")(x).astype(self.dtype)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Super-resolves `x`.

    Args:
      x: `[B, H, W, in_chans]` in [0, 1], any H, W >= 1.
      train: BatchNorm on batch statistics (apply with `mutable=['batch_stats']`) and
        stochastic depth (needs `rngs={'dropout': key}` when drop_path_rate > 0).

    Returns:
      `[B, H*scale, W*scale, in_chans]` float32, not clipped.
    """
    h, w = x.shape[1:3]
    x = x.astype(jnp.float32)
    x = layers.pad_to_min_size(x, self.min_size)
    x = (x - self._mean()) * self.img_range
    conv = self.conv  # PyTorch's default init, as DAT.

    first = conv(self.embed_dim, "conv_first")(x)
    body = swinir.closing_conv(self, self._features(first, train), self.resi_connection,
                               "conv_after_body") + first
    if self.upsampler == "pixelshuffle":
      y = nn.leaky_relu(conv(self.num_feat, "conv_before_upsample_0")(body), 0.01)
      y = layers.pixel_shuffle_upsample(conv, y, self.scale, "upsample")
      y = conv(self.in_chans, "conv_last")(y)
    else:
      y = layers.pixel_shuffle(conv(self.in_chans * self.scale**2, "upsample_0")(body),
                               self.scale)
    y = y.astype(jnp.float32) / self.img_range + self._mean()
    return y[:, :h * self.scale, :w * self.scale]
