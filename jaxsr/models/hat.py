"""HAT (Chen et al., CVPR 2023, "Activating More Pixels in Image Super-Resolution Transformer"):
the official `hat/archs/hat_arch.py` (as spandrel 0.4.2 ships it), with the official test-time
padding built in.

Shallow conv -> residual hybrid attention groups (RHAG: `depth` hybrid attention blocks, one
overlapping cross-attention block, a conv ('1conv') or nothing ('identity'), plus the group's
input) -> LayerNorm, conv, plus the shallow features -> conv + LeakyReLU(0.01), [conv,
PixelShuffle] per x2 (or one x3; none for x1), conv.

  HAB   x + attn(n) + conv_scale * CAB(n), n = norm1(x); then x + mlp(norm2(x)). attn is SwinIR's
        window self-attention (shifted every other block); CAB is conv 3x3 C -> C //
        compress_ratio, GELU, conv 3x3 -> C, RCAN's channel attention (C // squeeze_factor).
  OCAB  queries from the window x window windows, keys and values from the overlapping windows
        of side window + int(window * overlap_ratio) around them (torch `nn.Unfold`, zero
        padding after the qkv projection), with a relative position bias; x + proj(attention),
        then x + mlp(norm2(x)).

Any input size: reflect-padded at the bottom and right to a multiple of the window (the official
`check_image_size`), output cropped.

Submodules (official names, imported by `layers.flax_param_path`): conv_first, patch_embed/norm,
layers_<i>/residual_group/blocks_<j>/{norm1, attn/{qkv, proj, relative_position_bias_table},
conv_block/{cab_0, cab_2, cab_3/{attention_1, attention_3}}, norm2, mlp/{fc1, fc2}},
layers_<i>/residual_group/overlap_attn/{norm1, qkv, relative_position_bias_table, proj, norm2,
mlp/{fc1, fc2}}, layers_<i>/conv, norm, conv_after_body, conv_before_upsample_0, upsample_<k>,
conv_last. The buffers `relative_position_index_SA` / `_OCA` are computed here
(`relative_position_index`, `oca_relative_position_index`), not variables.
"""

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.models import layers
from jaxsr.models import swinir
from jaxsr.models import trunk

Dtype = Any

RESI_CONNECTIONS = ("1conv", "identity")
relative_position_index = swinir.relative_position_index  # HAB's (`relative_position_index_SA`).


def overlap_window_size(window: int, overlap_ratio: float) -> int:
  """Side of OCAB's key / value windows: window + int(window * overlap_ratio)."""
  return window + int(window * overlap_ratio)


def oca_relative_position_index(window: int, overlap_window: int) -> np.ndarray:
  """`[window^2, overlap_window^2]` int: the official `calculate_rpi_oca` (the buffer
  `relative_position_index_OCA`), index of (query, key) into OCAB's `[(window + overlap_window
  - 1)^2, heads]` bias table. Its entries go negative (the official offset is window -
  overlap_window + 1); torch's indexing wraps them, as `% rows` does in `OCAB`."""
  grid = lambda n: np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij")).reshape(2, -1)
  queries, keys = grid(window), grid(overlap_window)
  rel = (keys[:, None, :] - queries[:, :, None]).transpose(1, 2, 0) + (window - overlap_window + 1)
  return rel[..., 0] * (window + overlap_window - 1) + rel[..., 1]


def overlapping_windows(x: jax.Array, window: int, overlap_window: int) -> jax.Array:
  """torch `nn.Unfold(overlap_window, stride=window, padding=(overlap_window - window) // 2)`
  with the official rearrangement: `[B, H, W, C]` (H, W multiples of `window`, overlap_window -
  window even) -> `[B, nW, overlap_window^2, C]`, windows and their tokens in row-major order,
  zeros outside the image. Static slices and reshapes, no gather."""
  b, h, w, c = x.shape
  pad = (overlap_window - window) // 2
  spans = -(-overlap_window // window)  # Window-sized blocks that one overlapping window spans.
  nh, nw = h // window, w // window
  x = jnp.pad(x, ((0, 0), (pad, (nh + spans - 1) * window - h - pad),
                  (pad, (nw + spans - 1) * window - w - pad), (0, 0)))
  x = x.reshape(b, nh + spans - 1, window, x.shape[2], c)
  x = jnp.concatenate([x[:, m:m + nh] for m in range(spans)], axis=2)[:, :, :overlap_window]
  x = x.reshape(b, nh, overlap_window, nw + spans - 1, window, c)
  x = jnp.concatenate([x[:, :, :, m:m + nw] for m in range(spans)], axis=4)
  x = x[:, :, :, :, :overlap_window].transpose(0, 1, 3, 2, 4, 5)  # [B, nh, nw, ow, ow, C]
  return x.reshape(b, nh * nw, overlap_window * overlap_window, c)


class ChannelAttention(layers.LayerFactory):
  """RCAN's channel attention: x * sigmoid(conv1x1(relu(conv1x1(mean over H, W)))), the first
  conv to C // squeeze_factor channels (official `attention.1`, `attention.3`). `[B, H, W, C]`."""
  squeeze_factor: float
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    y = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True).astype(self.dtype)
    y = nn.relu(self.conv(int(c // self.squeeze_factor), "attention_1", kernel_size=1)(y))
    return x * jax.nn.sigmoid(self.conv(c, "attention_3", kernel_size=1)(y))


class CAB(layers.LayerFactory):
  """Channel attention block: conv 3x3 C -> C // compress_ratio, GELU (exact), conv 3x3 -> C,
  `ChannelAttention` (official `cab.0`, `cab.2`, `cab.3`). `[B, H, W, C]`."""
  compress_ratio: float
  squeeze_factor: float
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    y = nn.gelu(self.conv(int(c // self.compress_ratio), "cab_0")(x), approximate=False)
    y = self.conv(c, "cab_2")(y)
    return ChannelAttention(self.squeeze_factor, self.dtype, self.param_dtype, name="cab_3")(y)


class GroupSpec(NamedTuple):
  """What the blocks of one RHAG share.

  Attributes:
    depth: hybrid attention blocks.
    num_heads: attention heads (HAB and OCAB).
    window: window side.
    overlap_window: OCAB's key / value window side (`overlap_window_size`).
    compress_ratio: CAB's channel compression.
    squeeze_factor: channel attention's squeeze.
    conv_scale: weight of CAB in each HAB.
    mlp_ratio: MLP hidden width / C (HAB and OCAB).
    qkv_bias: bias in the qkv projections.
    drop_path_rates: stochastic depth of each HAB (`depth` entries).
    attention: see `swinir.WindowAttention.impl` (HAB).
  """
  depth: int
  num_heads: int
  window: int
  overlap_window: int
  compress_ratio: float
  squeeze_factor: float
  conv_scale: float
  mlp_ratio: float
  qkv_bias: bool
  drop_path_rates: tuple[float, ...]
  attention: str


class HAB(nn.Module):
  """Hybrid attention block (module docstring). `[B, H, W, C]`, H and W multiples of the window.

  Attributes:
    spec: the RHAG's `GroupSpec`.
    shift: cyclic shift of the windows (0 or window // 2).
    drop_path_rate: stochastic depth of the attention and MLP branches in training.
    dtype: computation dtype (LayerNorm, logits and softmax in float32).
    param_dtype: parameter dtype.
  """
  spec: GroupSpec
  shift: int = 0
  drop_path_rate: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def dropout_keys(self) -> jax.Array:
    """`[2]` the 'dropout' keys `__call__` draws in training (attention, then MLP branch)."""
    return jnp.stack([self.make_rng("dropout"), self.make_rng("dropout")])

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, keep_prob: Any = None,
               keys: jax.Array | None = None) -> jax.Array:
    """`keep_prob` and `keys`, if given, replace `drop_path_rate` and the module's own draws in
    training (see `swinir.SwinTransformerBlock`)."""
    _, h, w, c = x.shape
    spec, ws, s = self.spec, self.spec.window, self.shift
    norm = lambda name: swinir.layer_norm(self.dtype, self.param_dtype, name)
    if keys is None:
      branch = lambda y, _: swinir.drop_path(y, self.drop_path_rate, self, train)
    else:
      branch = lambda y, i: swinir.drop_samples(y, keep_prob, keys[i]) if train else y
    y = norm("norm1")(x).astype(self.dtype)
    conv_y = CAB(spec.compress_ratio, spec.squeeze_factor, self.dtype, self.param_dtype,
                 name="conv_block")(y)
    mask = None
    if s:
      y = jnp.roll(y, (-s, -s), axis=(1, 2))
      mask = swinir.shifted_window_mask(h, w, ws, s)
    y = swinir.WindowAttention(spec.num_heads, ws, spec.qkv_bias, spec.attention, self.dtype,
                               self.param_dtype, name="attn")(swinir.window_partition(y, ws), mask)
    y = swinir.window_reverse(y, ws, h, w)
    if s:
      y = jnp.roll(y, (s, s), axis=(1, 2))
    x = x + branch(y, 0) + conv_y * jnp.asarray(spec.conv_scale, conv_y.dtype)
    mlp = swinir.Mlp(int(c * spec.mlp_ratio), self.dtype, self.param_dtype, name="mlp")
    return x + branch(mlp(norm("norm2")(x).astype(self.dtype)), 1)


class OCAB(nn.Module):
  """Overlapping cross-attention block (module docstring). `[B, H, W, C]`, H and W multiples of
  the window.

  Attributes:
    spec: the RHAG's `GroupSpec`.
    dtype: computation dtype (LayerNorm, logits and softmax in float32).
    param_dtype: parameter dtype.
  """
  spec: GroupSpec
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    spec, ws, ow = self.spec, self.spec.window, self.spec.overlap_window
    heads, head_dim = spec.num_heads, c // spec.num_heads
    norm = lambda name: swinir.layer_norm(self.dtype, self.param_dtype, name)
    dense = lambda features, name, **kw: swinir.dense(features, self.dtype, self.param_dtype,
                                                      name, **kw)
    y = norm("norm1")(x).astype(self.dtype)
    qkv = dense(3 * c, "qkv", use_bias=spec.qkv_bias)(y.reshape(-1, c)).reshape(b, h, w, 3 * c)
    q = swinir.window_partition(qkv[..., :c], ws)  # [B, nW, ws^2, C]
    kv = overlapping_windows(qkv[..., c:], ws, ow)  # [B, nW, ow^2, 2C]: keys, then values.
    nwin = q.shape[1]
    q = q.reshape(b, nwin, ws * ws, heads, head_dim)
    k, v = kv.reshape(b, nwin, ow * ow, 2, heads, head_dim).transpose(3, 0, 1, 2, 4, 5)

    table = self.param("relative_position_bias_table", nn.initializers.truncated_normal(0.02),
                       ((ws + ow - 1)**2, heads), self.param_dtype)
    index = oca_relative_position_index(ws, ow) % table.shape[0]
    bias = jnp.asarray(table, jnp.float32)[index].transpose(2, 0, 1)  # [N, ws^2, ow^2]
    scale = jnp.asarray(head_dim**-0.5, q.dtype)
    logits = jnp.einsum("bwqnd,bwknd->bnwqk", q * scale, k, preferred_element_type=jnp.float32)
    probs = jax.nn.softmax(logits + bias[None, :, None], axis=-1).astype(v.dtype)
    out = jnp.einsum("bnwqk,bwknd->bwqnd", probs, v).reshape(b, nwin, ws * ws, c)
    out = swinir.window_reverse(out, ws, h, w)
    x = x + dense(c, "proj")(out.reshape(-1, c)).reshape(b, h, w, c)
    mlp = swinir.Mlp(int(c * spec.mlp_ratio), self.dtype, self.param_dtype, name="mlp")
    return x + mlp(norm("norm2")(x).astype(self.dtype))


class AttenBlocks(nn.Module):
  """`spec.depth` HABs (shifting every other one), then one OCAB (official `residual_group`).

  With `scan_blocks`, one pair of HABs is compiled and scanned over the pairs' parameters
  (`trunk.apply_blocks`); in training each block gets its drop rate and 'dropout' keys as
  scanned inputs (as `swinir.BasicLayer`).
  """
  spec: GroupSpec
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  scan_blocks: bool = True
  remat: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    spec, rates = self.spec, self.spec.drop_path_rates
    blocks = [HAB(spec, 0 if j % 2 == 0 else spec.window // 2, rates[j], self.dtype,
                  self.param_dtype, name=f"blocks_{j}") for j in range(spec.depth)]
    run = lambda **kw: trunk.apply_blocks(self, blocks, x, scan=self.scan_blocks,
                                          remat=self.remat, group=2, kwargs={"train": train},
                                          **kw)
    if not (train and any(rates) and (self.scan_blocks or self.remat)):
      x = run()
    else:
      keys = [block.dropout_keys() if rate else None for block, rate in zip(blocks, rates)]
      some_key = next(k for k in keys if k is not None)  # Rate 0 keeps all, whatever the key.
      x = run(block_args=[{"keep_prob": np.float32(1.0 - rate),
                           "keys": some_key if k is None else k} for rate, k in zip(rates, keys)])
    return OCAB(spec, self.dtype, self.param_dtype, name="overlap_attn")(x)


class RHAG(layers.LayerFactory):
  """Residual hybrid attention group: x + conv(AttenBlocks(x)) (no conv for 'identity')."""
  spec: GroupSpec
  resi_connection: str
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  scan_blocks: bool = True
  remat: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = AttenBlocks(self.spec, self.dtype, self.param_dtype, self.scan_blocks, self.remat,
                    name="residual_group")(x, train)
    if self.resi_connection == "1conv":
      y = self.conv(x.shape[-1], "conv")(y)
    return y + x


class HAT(layers.SRModel):
  """HAT generator (module docstring). Released x4 models: HAT-S (embed_dim 144, compress_ratio
  24, squeeze_factor 24) 9,621,183 parameters; HAT (the defaults) 20,772,507; HAT-L (depths
  and heads 6 x 12) 40,846,575 (the paper's 9.6M, 20.8M, 40.8M).

  Attributes:
    scale: upscale factor: 1 (no upsampling convs), 2, 3, 4 or 8.
    in_chans: input and output channels (3: the DIV2K mean is subtracted; else none).
    embed_dim: token channels C.
    depths: HABs per RHAG.
    num_heads: attention heads per RHAG (C divisible by each).
    window_size: attention window side; inputs are padded to a multiple of it.
    compress_ratio: CAB's hidden channels are C // compress_ratio.
    squeeze_factor: channel attention's hidden channels are C // squeeze_factor.
    conv_scale: weight of CAB in each HAB (not in the weights; 0.01 in every released model).
    overlap_ratio: OCAB's key / value windows have side window + int(window * overlap_ratio);
      int(window * overlap_ratio) must be even (the official Unfold needs it).
    mlp_ratio: MLP hidden width / C.
    qkv_bias: bias in the qkv projections.
    patch_norm: LayerNorm after the shallow conv.
    drop_path_rate: stochastic depth of the HABs, rising linearly from 0 over all blocks to
      this; applied only with `train=True` and the 'dropout' rng.
    img_range: inputs are mapped to `(x - mean) * img_range`.
    resi_connection: '1conv' | 'identity' (no conv closing the RHAGs and the body).
    num_feat: channels of the reconstruction.
    attention: HAB's `swinir.WindowAttention.impl` ('einsum' | 'dot_product_attention').
    scan_blocks: compile one pair of HABs per RHAG and scan it over the pairs' parameters.
    remat: recompute each pair's activations in the backward pass instead of keeping them.
    dtype: computation dtype (LayerNorm, logits and softmax in float32); output float32.
    param_dtype: parameter dtype.
  """
  SUPPORTED_SCALES = (1, 2, 3, 4, 8)

  in_chans: int = 3
  embed_dim: int = 180
  depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
  num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
  window_size: int = 16
  compress_ratio: float = 3
  squeeze_factor: float = 30
  conv_scale: float = 0.01
  overlap_ratio: float = 0.5
  mlp_ratio: float = 2.0
  qkv_bias: bool = True
  patch_norm: bool = True
  drop_path_rate: float = 0.1
  img_range: float = 1.0
  resi_connection: str = "1conv"
  num_feat: int = 64
  attention: str = "einsum"
  scan_blocks: bool = True
  remat: bool = False

  def __post_init__(self):
    errors = []
    if self.resi_connection not in RESI_CONNECTIONS:
      errors.append(f"resi_connection={self.resi_connection!r} is not one of "
                    f"{RESI_CONNECTIONS}")
    if self.attention not in swinir.ATTENTION_IMPLS:
      errors.append(f"attention={self.attention!r} is not one of {swinir.ATTENTION_IMPLS}")
    if len(self.depths) != len(self.num_heads) or not self.depths:
      errors.append(f"depths {tuple(self.depths)} and num_heads {tuple(self.num_heads)} need "
                    "one entry per RHAG")
    if any(self.embed_dim % h for h in self.num_heads):
      errors.append(f"embed_dim {self.embed_dim} is not divisible by every num_heads "
                    f"{tuple(self.num_heads)}")
    if self.window_size < 2:
      errors.append(f"window_size must be >= 2, got {self.window_size}")
    extra = overlap_window_size(self.window_size, self.overlap_ratio) - self.window_size
    if self.overlap_ratio < 0 or extra % 2:
      errors.append(f"overlap_ratio {self.overlap_ratio} adds {extra} to the window "
                    f"{self.window_size}; it must add an even number >= 0")
    for name in ("compress_ratio", "squeeze_factor"):
      ratio = getattr(self, name)
      if not ratio > 0 or int(self.embed_dim // ratio) < 1:
        errors.append(f"{name} {ratio} leaves no channel of embed_dim {self.embed_dim}")
    if errors:
      raise ValueError("HAT: " + "; ".join(errors))
    super().__post_init__()

  @property
  def input_multiple(self) -> int:
    """The window: tiles that are multiples of it keep the whole image's windows."""
    return self.window_size

  def _features(self, x: jax.Array, train: bool) -> jax.Array:
    """Deep features: RHAGs between the patch and final LayerNorms. `[B, H, W, C]`."""
    if self.patch_norm:
      x = swinir.PatchEmbedNorm(self.dtype, self.param_dtype, name="patch_embed")(x)
    rates = np.linspace(0.0, self.drop_path_rate, sum(self.depths)).tolist()
    overlap = overlap_window_size(self.window_size, self.overlap_ratio)
    start = 0
    for i, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
      spec = GroupSpec(depth, heads, self.window_size, overlap, self.compress_ratio,
                       self.squeeze_factor, self.conv_scale, self.mlp_ratio, self.qkv_bias,
                       tuple(rates[start:start + depth]), self.attention)
      x = RHAG(spec, self.resi_connection, self.dtype, self.param_dtype, self.scan_blocks,
               self.remat, name=f"layers_{i}")(x, train)
      start += depth
    return swinir.layer_norm(self.dtype, self.param_dtype, "norm")(x).astype(self.dtype)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Super-resolves `x`.

    Args:
      x: `[B, H, W, in_chans]` in [0, 1], any H, W >= 1.
      train: stochastic depth on (needs `rngs={'dropout': key}` when drop_path_rate > 0).

    Returns:
      `[B, H*scale, W*scale, in_chans]` float32, not clipped.
    """
    h, w = x.shape[1:3]
    ws = self.window_size
    mean = jnp.asarray(layers.DIV2K_RGB_MEAN if self.in_chans == 3 else 0.0, jnp.float32)
    x = (x.astype(jnp.float32) - mean) * self.img_range
    x = jnp.pad(x, ((0, 0), (0, -h % ws), (0, -w % ws), (0, 0)), mode="reflect")
    conv = self.conv  # PyTorch's default init, as the official code.

    first = conv(self.embed_dim, "conv_first")(x)
    body = self._features(first, train)
    if self.resi_connection == "1conv":
      body = conv(self.embed_dim, "conv_after_body")(body)
    y = nn.leaky_relu(conv(self.num_feat, "conv_before_upsample_0")(body + first), 0.01)
    y = layers.pixel_shuffle_upsample(conv, y, self.scale, "upsample")
    y = conv(self.in_chans, "conv_last")(y)
    y = y.astype(jnp.float32) / self.img_range + mean
    return y[:, :h * self.scale, :w * self.scale]
