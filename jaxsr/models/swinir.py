"""SwinIR (Liang et al., ICCVW 2021): BasicSR `basicsr/archs/swinir_arch.py` / the official
`network_swinir.py`, with the official test-time padding built in.

Shallow conv -> residual Swin Transformer blocks (RSTB: `depth` Swin layers with window
self-attention, shifted windows every other layer, relative position bias, MLP; a `1conv` or
`3conv` closing each RSTB) -> final LayerNorm and conv -> upsampler:
  'pixelshuffle'        classical SR: conv + LeakyReLU, [conv, PixelShuffle] per x2 (or one x3);
  'pixelshuffledirect'  lightweight SR: one conv and PixelShuffle(scale);
  'nearest+conv'        real-world SR: nearest x2 + conv, once (x2) or twice (x4);
  ''                    scale 1 (denoising, JPEG artefacts): the input plus a conv.

Any input size: the image is reflect-padded at the bottom and right to a multiple of the window
(the official `check_image_size`) and the output cropped; the shift mask and the relative
position bias are computed for the actual (padded) size, not a fixed `img_size`.

Submodules (BasicSR names, imported by `layers.flax_param_path`): conv_first,
patch_embed/norm, layers_<i>/residual_group/blocks_<j>/{norm1, attn/{qkv, proj,
relative_position_bias_table}, norm2, mlp/{fc1, fc2}}, layers_<i>/conv (or conv_0, conv_2, conv_4
for 3conv), norm, conv_after_body (or _0/_2/_4), conv_before_upsample_0, upsample_<k>,
conv_up1, conv_up2, conv_hr, conv_last. LayerNorms hold `scale`/`bias` (torch weight/bias).
The state dict's buffers `relative_position_index` and `attn_mask` are not variables here.
"""

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.models import layers
from jaxsr.models import trunk

Dtype = Any

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")
RESI_CONNECTIONS = ("1conv", "3conv")
ATTENTION_IMPLS = ("einsum", "dot_product_attention")
# Scales each upsampler can build.
UPSAMPLER_SCALES = {"pixelshuffle": (2, 3, 4, 8), "pixelshuffledirect": (2, 3, 4, 8),
                    "nearest+conv": (2, 4), "": (1,)}
_MASK_VALUE = -100.0  # Added to the logits of token pairs from different shifted regions.
_LN_EPS = 1e-5  # torch nn.LayerNorm.

_trunc_normal = nn.initializers.truncated_normal(0.02)  # SwinIR `_init_weights` (Linear).


def relative_position_index(window: int) -> np.ndarray:
  """`[T, T]` int index into the `[(2 window - 1)^2, heads]` bias table, T = window^2
  (torch's `relative_position_index` buffer)."""
  coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij"))
  coords = coords.reshape(2, -1)
  rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window - 1)
  return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def window_partition(x: jax.Array, window: int) -> jax.Array:
  """`[B, H, W, C]` -> `[B, nW, window^2, C]`, windows in row-major order (H, W multiples of
  `window`)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // window, window, w // window, window, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, (h // window) * (w // window), window * window, c)


def window_reverse(windows: jax.Array, window: int, height: int, width: int) -> jax.Array:
  """Inverse of `window_partition`: `[B, nW, window^2, C]` -> `[B, height, width, C]`."""
  b, _, _, c = windows.shape
  x = windows.reshape(b, height // window, width // window, window, window, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, height, width, c)


def shifted_window_mask(height: int, width: int, window: int, shift: int) -> jax.Array:
  """`[nW, T, T]` float32: 0 where two tokens of a shifted window come from the same region of
  the (un-rolled) image, -100 elsewhere (torch's `calculate_mask`). Built on device from iotas,
  so large images embed no large constant."""

  def regions(n: int) -> jax.Array:  # 0, 1, 2 for [0, n - window), [.., n - shift), [.., n).
    i = jnp.arange(n)
    return (i >= n - window).astype(jnp.int32) + (i >= n - shift).astype(jnp.int32)

  ids = regions(height)[:, None] * 3 + regions(width)[None, :]
  # [nW, T]; squeeze, not [0, ..., 0], which is a gather for symbolic sizes (export).
  ids = jnp.squeeze(window_partition(ids[None, :, :, None], window), (0, 3))
  return jnp.where(ids[:, None, :] != ids[:, :, None], _MASK_VALUE, 0.0).astype(jnp.float32)


def layer_norm(dtype: Dtype, param_dtype: Dtype, name: str) -> nn.LayerNorm:
  """torch `nn.LayerNorm` (eps 1e-5), computed in float32."""
  return nn.LayerNorm(epsilon=_LN_EPS, dtype=jnp.float32, param_dtype=param_dtype, name=name)


def dense(features: int, dtype: Dtype, param_dtype: Dtype, name: str,
          use_bias: bool = True) -> nn.Dense:
  """`nn.Linear` initialised as SwinIR: truncated normal (std 0.02) kernel, zero bias."""
  return nn.Dense(features, use_bias=use_bias, dtype=dtype, param_dtype=param_dtype,
                  kernel_init=_trunc_normal, name=name)


class WindowAttention(nn.Module):
  """Multi-head self-attention inside windows, with a relative position bias.

  Attributes:
    num_heads: heads; dim must be divisible by it.
    window: window side (T = window^2 tokens).
    qkv_bias: bias in the qkv projection.
    impl: 'einsum' (plain formulation; faster on CPU) | 'dot_product_attention'
      (`jax.nn.dot_product_attention` with windows in the batch axis and the bias broadcast to
      it, for backends with a fused kernel for the head size).
    dtype: computation dtype (logits and softmax are float32).
    param_dtype: parameter dtype.
  """
  num_heads: int
  window: int
  qkv_bias: bool = True
  impl: str = "einsum"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    """`x` `[B, nW, T, C]`, `mask` `[nW, T, T]` or None -> `[B, nW, T, C]`."""
    b, nw, t, c = x.shape
    heads, head_dim = self.num_heads, c // self.num_heads
    table = self.param("relative_position_bias_table", _trunc_normal,
                       ((2 * self.window - 1)**2, heads), self.param_dtype)
    bias = jnp.asarray(table, jnp.float32)[relative_position_index(self.window)]  # [T, T, N]
    bias = bias.transpose(2, 0, 1)[:, None, None]  # [N, 1, 1, T, T]
    if mask is not None:
      bias = bias + mask[None, None]  # [N, 1, nW, T, T]

    # Dense layers on 2-D [tokens, C]: XLA:CPU's gradients of 4-D dots are ~3x slower.
    qkv = dense(3 * c, self.dtype, self.param_dtype, "qkv",
                use_bias=self.qkv_bias)(x.reshape(-1, c))
    # [3, N, B * nW, T, head_dim]: heads outermost, one small matmul per (head, window).
    q, k, v = qkv.reshape(b * nw, t, 3, heads, head_dim).transpose(2, 3, 0, 1, 4)
    scale = head_dim**-0.5
    if self.impl == "dot_product_attention":
      fold = lambda a: a.transpose(1, 2, 0, 3)  # [B * nW, T, N, head_dim]
      bias = jnp.broadcast_to(bias, (heads, b, nw, t, t)).reshape(heads, b * nw, t, t)
      out = jax.nn.dot_product_attention(fold(q), fold(k), fold(v),
                                         bias=bias.transpose(1, 0, 2, 3).astype(q.dtype),
                                         scale=scale)  # [B * nW, T, N, head_dim]
    else:
      logits = jnp.einsum("nxqd,nxkd->nxqk", q * jnp.asarray(scale, q.dtype), k,
                          preferred_element_type=jnp.float32)
      logits = logits.reshape(heads, b, nw, t, t) + bias
      probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype).reshape(heads, b * nw, t, t)
      out = jnp.einsum("nxqk,nxkd->nxqd", probs, v).transpose(1, 2, 0, 3)
    out = dense(c, self.dtype, self.param_dtype, "proj")(out.reshape(-1, c))
    return out.reshape(b, nw, t, c)


def drop_path(x: jax.Array, rate: float, module: nn.Module, train: bool) -> jax.Array:
  """Stochastic depth (timm `DropPath`): in training, zero each sample's residual branch with
  probability `rate` and scale the kept ones by 1 / (1 - rate). Needs the 'dropout' rng."""
  if not train or rate == 0.0:
    return x
  return drop_samples(x, 1.0 - rate, module.make_rng("dropout"))


def drop_samples(x: jax.Array, keep_prob: Any, key: jax.Array) -> jax.Array:
  """`drop_path`'s draw: zero each sample of `x` with probability 1 - `keep_prob` (a float or
  a float32 scalar; 1 keeps all) and scale the kept ones by 1 / `keep_prob`."""
  keep = jax.random.bernoulli(key, keep_prob, (x.shape[0],) + (1,) * (x.ndim - 1))
  return jnp.where(keep, x / jnp.asarray(keep_prob, x.dtype), 0.0).astype(x.dtype)


class SwinTransformerBlock(nn.Module):
  """x + attn(norm1(x)) and x + mlp(norm2(x)), attention in (shifted) windows. `[B, H, W, C]`,
  H and W multiples of `window`.

  Attributes:
    num_heads: attention heads.
    window: window side.
    shift: cyclic shift of the windows (0 or window // 2).
    mlp_ratio: MLP hidden width / C.
    qkv_bias: bias in the qkv projection.
    drop_path_rate: stochastic depth of both residual branches in training.
    attention: see `WindowAttention.impl`.
    dtype: computation dtype.
    param_dtype: parameter dtype.
  """
  num_heads: int
  window: int
  shift: int = 0
  mlp_ratio: float = 2.0
  qkv_bias: bool = True
  drop_path_rate: float = 0.0
  attention: str = "einsum"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def dropout_keys(self) -> jax.Array:
    """`[2]` the 'dropout' keys that `__call__` draws in training (attention branch, then
    MLP branch) when `drop_path_rate` > 0."""
    return jnp.stack([self.make_rng("dropout"), self.make_rng("dropout")])

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, keep_prob: Any = None,
               keys: jax.Array | None = None) -> jax.Array:
    """`keep_prob` (1 - drop rate, float32 scalar) and `keys` (`dropout_keys()`), if given,
    replace `drop_path_rate` and the module's own draws in training: the per-block values of
    a scanned trunk (`BasicLayer`)."""
    _, h, w, c = x.shape
    norm = lambda name: layer_norm(self.dtype, self.param_dtype, name)
    if keys is None:
      branch = lambda y, _: drop_path(y, self.drop_path_rate, self, train)
    else:
      branch = lambda y, i: drop_samples(y, keep_prob, keys[i]) if train else y
    ws, s = self.window, self.shift
    y = norm("norm1")(x).astype(self.dtype)
    mask = None
    if s:
      y = jnp.roll(y, (-s, -s), axis=(1, 2))
      mask = shifted_window_mask(h, w, ws, s)
    y = WindowAttention(self.num_heads, ws, self.qkv_bias, self.attention, self.dtype,
                        self.param_dtype, name="attn")(window_partition(y, ws), mask)
    y = window_reverse(y, ws, h, w)
    if s:
      y = jnp.roll(y, (s, s), axis=(1, 2))
    x = x + branch(y, 0)

    hidden = int(c * self.mlp_ratio)
    mlp = Mlp(hidden, dtype=self.dtype, param_dtype=self.param_dtype, name="mlp")
    y = mlp(norm("norm2")(x).astype(self.dtype))
    return x + branch(y, 1)


class Mlp(nn.Module):
  """fc1 -> GELU (exact) -> fc2, on the last axis."""
  hidden: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = dense(self.hidden, self.dtype, self.param_dtype, "fc1")(x.reshape(-1, x.shape[-1]))
    y = nn.gelu(y, approximate=False)
    return dense(x.shape[-1], self.dtype, self.param_dtype, "fc2")(y).reshape(x.shape)


def closing_conv(factory: layers.LayerFactory, x: jax.Array, kind: str, name: str) -> jax.Array:
  """The conv that closes an RSTB and the body: '1conv' (3x3, C -> C, named `name`) or
  '3conv' (3x3 C -> C/4, LReLU, 1x1, LReLU, 3x3 C/4 -> C; `name`_0, _2, _4)."""
  c = x.shape[-1]
  if kind == "1conv":
    return factory.conv(c, name)(x)
  y = layers.lrelu(factory.conv(c // 4, f"{name}_0")(x))
  y = layers.lrelu(factory.conv(c // 4, f"{name}_2", kernel_size=1)(y))
  return factory.conv(c, f"{name}_4")(y)


class StageSpec(NamedTuple):
  """What the Swin blocks of one RSTB share.

  Attributes:
    depth: Swin blocks.
    num_heads: attention heads.
    window: window side.
    mlp_ratio: MLP hidden width / C.
    qkv_bias: bias in the qkv projections.
    drop_path_rates: stochastic depth of each block (`depth` entries).
    attention: see `WindowAttention.impl`.
  """
  depth: int
  num_heads: int
  window: int
  mlp_ratio: float
  qkv_bias: bool
  drop_path_rates: tuple[float, ...]
  attention: str


class BasicLayer(nn.Module):
  """`spec.depth` Swin blocks, shifting every other one (BasicSR's `residual_group`).

  With `scan_blocks`, one pair of blocks (unshifted, shifted) is compiled and scanned over the
  pairs' parameters (`trunk.apply_blocks`); in training each block gets its drop rate and its
  own 'dropout' keys as scanned inputs, so the drops are those of the unrolled blocks.
  """
  spec: StageSpec
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  scan_blocks: bool = True
  remat: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    spec = self.spec
    blocks = [SwinTransformerBlock(
        spec.num_heads, spec.window, 0 if j % 2 == 0 else spec.window // 2, spec.mlp_ratio,
        spec.qkv_bias, spec.drop_path_rates[j], spec.attention, self.dtype,
        self.param_dtype, name=f"blocks_{j}") for j in range(spec.depth)]
    rates = spec.drop_path_rates
    if not (train and any(rates) and (self.scan_blocks or self.remat)):
      return trunk.apply_blocks(self, blocks, x, scan=self.scan_blocks, remat=self.remat,
                                group=2, kwargs={"train": train})
    keys = [block.dropout_keys() if rate else None for block, rate in zip(blocks, rates)]
    some_key = next(k for k in keys if k is not None)  # Rate 0 keeps all, whatever the key.
    block_args = [{"keep_prob": np.float32(1.0 - rate), "keys": some_key if k is None else k}
                  for rate, k in zip(rates, keys)]
    return trunk.apply_blocks(self, blocks, x, scan=self.scan_blocks, remat=self.remat,
                              group=2, block_args=block_args, kwargs={"train": train})


class RSTB(layers.LayerFactory):
  """Residual Swin Transformer block: x + conv(Swin blocks(x)). `[B, H, W, C]`."""
  spec: StageSpec
  resi_connection: str
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  scan_blocks: bool = True
  remat: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = BasicLayer(self.spec, self.dtype, self.param_dtype, self.scan_blocks, self.remat,
                   name="residual_group")(x, train)
    return closing_conv(self, y, self.resi_connection, "conv") + x


class PatchEmbedNorm(nn.Module):
  """BasicSR's `patch_embed` (patch size 1): only its LayerNorm `norm`."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return layer_norm(self.dtype, self.param_dtype, "norm")(x).astype(self.dtype)


class SwinIR(layers.SRModel):
  """SwinIR generator (module docstring). Paper models: classical x4 (embed_dim 180, depths
  and heads 6 x 6, window 8, 'pixelshuffle') has 11,900,199 parameters; lightweight x4
  (60, 6 x 4, 'pixelshuffledirect') 929,628; real-world x4 M ('nearest+conv') 11,715,559; L
  (240, depths 6 x 9, heads 8 x 9, '3conv') 28,013,059.

  Attributes:
    scale: upscale factor; must suit `upsampler` (`UPSAMPLER_SCALES`).
    num_in_ch: input channels (3: the DIV2K mean is subtracted; else none).
    num_out_ch: output channels (the '' upsampler adds the input: must equal num_in_ch).
    embed_dim: token channels C.
    depths: Swin blocks per RSTB.
    num_heads: attention heads per RSTB (C divisible by each).
    window_size: attention window side; inputs are padded to a multiple of it.
    mlp_ratio: MLP hidden width / C.
    qkv_bias: bias in the qkv projections.
    patch_norm: LayerNorm after the shallow conv.
    drop_path_rate: stochastic depth, rising linearly from 0 over all blocks to this; applied
      only with `train=True` and the 'dropout' rng.
    img_range: inputs are mapped to `(x - mean) * img_range`.
    upsampler: one of `UPSAMPLERS`.
    resi_connection: '1conv' | '3conv'.
    num_feat: channels of the 'pixelshuffle' / 'nearest+conv' reconstruction (64 in SwinIR).
    attention: one of `ATTENTION_IMPLS`.
    scan_blocks: in each RSTB, compile one pair of Swin blocks and scan it over the pairs'
      parameters (`BasicLayer`; same parameters, values and drops) instead of unrolling them.
    remat: recompute each pair's activations in the backward pass instead of keeping them.
    dtype: computation dtype (LayerNorm, logits and softmax in float32); output float32.
    param_dtype: parameter dtype.
  """
  SUPPORTED_SCALES = (1, 2, 3, 4, 8)

  num_in_ch: int = 3
  num_out_ch: int = 3
  embed_dim: int = 180
  depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
  num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
  window_size: int = 8
  mlp_ratio: float = 2.0
  qkv_bias: bool = True
  patch_norm: bool = True
  drop_path_rate: float = 0.1
  img_range: float = 1.0
  upsampler: str = "pixelshuffle"
  resi_connection: str = "1conv"
  num_feat: int = 64
  attention: str = "einsum"
  scan_blocks: bool = True
  remat: bool = False

  def __post_init__(self):
    errors = []
    if self.upsampler not in UPSAMPLERS:
      errors.append(f"upsampler={self.upsampler!r} is not one of {UPSAMPLERS}")
    elif self.scale not in UPSAMPLER_SCALES[self.upsampler]:
      errors.append(f"upsampler {self.upsampler!r} builds scales "
                    f"{UPSAMPLER_SCALES[self.upsampler]}, not {self.scale}")
    if self.resi_connection not in RESI_CONNECTIONS:
      errors.append(f"resi_connection={self.resi_connection!r} is not one of "
                    f"{RESI_CONNECTIONS}")
    if self.attention not in ATTENTION_IMPLS:
      errors.append(f"attention={self.attention!r} is not one of {ATTENTION_IMPLS}")
    if len(self.depths) != len(self.num_heads) or not self.depths:
      errors.append(f"depths {tuple(self.depths)} and num_heads {tuple(self.num_heads)} need "
                    "one entry per RSTB")
    if any(self.embed_dim % h for h in self.num_heads):
      errors.append(f"embed_dim {self.embed_dim} is not divisible by every num_heads "
                    f"{tuple(self.num_heads)}")
    if self.window_size < 2:
      errors.append(f"window_size must be >= 2, got {self.window_size}")
    if self.upsampler == "" and self.num_in_ch != self.num_out_ch:
      errors.append("upsampler '' adds the input: num_out_ch must equal num_in_ch")
    if errors:
      raise ValueError("SwinIR: " + "; ".join(errors))
    super().__post_init__()

  def _mean(self, channels: int) -> jax.Array:
    return jnp.asarray(layers.DIV2K_RGB_MEAN if channels == 3 else 0.0, jnp.float32)

  def _features(self, x: jax.Array, train: bool) -> jax.Array:
    """Deep features: RSTBs between the patch and final LayerNorms. `[B, H, W, C]`."""
    if self.patch_norm:
      x = PatchEmbedNorm(self.dtype, self.param_dtype, name="patch_embed")(x)
    rates = np.linspace(0.0, self.drop_path_rate, sum(self.depths)).tolist()
    start = 0
    for i, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
      spec = StageSpec(depth, heads, self.window_size, self.mlp_ratio, self.qkv_bias,
                       tuple(rates[start:start + depth]), self.attention)
      x = RSTB(spec, self.resi_connection, self.dtype, self.param_dtype, self.scan_blocks,
               self.remat, name=f"layers_{i}")(x, train)
      start += depth
    return layer_norm(self.dtype, self.param_dtype, "norm")(x).astype(self.dtype)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Super-resolves `x`.

    Args:
      x: `[B, H, W, num_in_ch]` in [0, 1], any H, W >= 1.
      train: stochastic depth on (needs `rngs={'dropout': key}` when drop_path_rate > 0).

    Returns:
      `[B, H*scale, W*scale, num_out_ch]` float32, not clipped.
    """
    h, w = x.shape[1:3]
    ws = self.window_size
    x = jnp.pad(x.astype(jnp.float32), ((0, 0), (0, -h % ws), (0, -w % ws), (0, 0)),
                mode="reflect")
    x = (x - self._mean(self.num_in_ch)) * self.img_range
    conv = self.conv  # PyTorch's default init, as SwinIR.

    first = conv(self.embed_dim, "conv_first")(x)
    body = closing_conv(self, self._features(first, train), self.resi_connection,
                        "conv_after_body") + first
    if self.upsampler == "pixelshuffle":
      y = nn.leaky_relu(conv(self.num_feat, "conv_before_upsample_0")(body), 0.01)
      y = layers.pixel_shuffle_upsample(conv, y, self.scale, "upsample")
      y = conv(self.num_out_ch, "conv_last")(y)
    elif self.upsampler == "pixelshuffledirect":
      y = conv(self.num_out_ch * self.scale**2, "upsample_0")(body)
      y = layers.pixel_shuffle(y, self.scale)
    elif self.upsampler == "nearest+conv":
      y = nn.leaky_relu(conv(self.num_feat, "conv_before_upsample_0")(body), 0.01)
      for k in range(1, 1 + self.scale // 2):
        y = layers.lrelu(conv(self.num_feat, f"conv_up{k}")(layers.upsample_nearest(y, 2)))
      y = conv(self.num_out_ch, "conv_last")(layers.lrelu(conv(self.num_feat, "conv_hr")(y)))
    else:
      y = x + conv(self.num_out_ch, "conv_last")(body)
    y = y.astype(jnp.float32) / self.img_range + self._mean(self.num_out_ch)
    return y[:, :h * self.scale, :w * self.scale]
