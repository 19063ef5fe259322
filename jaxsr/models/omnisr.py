"""OmniSR (Wang et al., CVPR 2023, "Omni Aggregation Networks for Lightweight Image
Super-Resolution"): the official `Omni-SR` code as packaged by spandrel 0.4.2
(`spandrel/architectures/OmniSR`), with spandrel's and the official padding built in.

Shallow 3x3 conv -> `res_num` OSAGs -> 3x3 conv + the shallow features -> conv + PixelShuffle.
An OSAG (omni-scale aggregation group) is `block_num` OSA blocks, a 1x1 conv, a residual add
and an ESA (enhanced spatial attention: strided conv, 7x7 max pool, bilinear upsampling, a
sigmoid gate). An OSA block is an MBConv (1x1, depthwise 3x3, squeeze-excitation, 1x1) then two
rounds of [window self-attention, gated FFN, channel self-attention, gated FFN]: first with
contiguous windows ('block'), then with windows strided across the image ('grid'). Spatial
attention has 4 heads and (with `pe`) a learned relative position bias; channel attention
attends between the channels of one head (4 heads) over the pixels of a window (block) or over
the windows at one intra-window position (grid), with cosine logits times a learned temperature.

Any input size, as spandrel runs the model: an image under 16 pixels on a side is first padded
at the bottom / right to 16 (reflect, then edge where reflect runs out: spandrel's
`SizeRequirements(minimum=16)`; the ESA's pooling needs it), then zero-padded to a multiple of
`window_size` (the official `check_image_size`), and the output is cropped.

Submodules (PyTorch names through `layers.flax_param_path`): input, residual_layer_<i> (OSAG)
/ {residual_layer_<j> (OSA block, j < block_num) / layer_<k>, residual_layer_<block_num> (1x1
conv), esa / {conv1, conv_f, conv2, conv3, conv4}}, output, up_0. In an OSA block: layer_0
(MBConv) / {fn_0, fn_2, fn_4 / {gate_1, gate_3}, fn_5}; layer_2, layer_8 (spatial attention) /
{norm, fn / {to_qkv, to_out_0, rel_pos_bias}}; layer_4, _6, _10, _12 (gated FFN) / {norm, fn /
{project_in, dwconv, project_out}}; layer_5, layer_11 (channel attention) / {norm, fn /
{temperature, qkv, qkv_dwconv, project_out}}. `rel_pos_bias` is an `nn.Embed` (`embedding`
`[(2 window - 1)^2, 4]`, torch's `rel_pos_bias.weight`; `interop.families.omnisr.to_jaxsr`
renames it); the index buffer `rel_pos_indices` is recomputed.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.models import layers
from jaxsr.models import swinir
from jaxsr.models import trunk

Dtype = Any

MIN_SIZE = 16  # spandrel's SizeRequirements(minimum=16) for OmniSR.
HEADS = 4  # Heads of every attention (spatial: dim_head = C // 4; channel: heads=4).
_LN_EPS = 1e-5  # torch nn.LayerNorm (before the spatial attentions).
_LN2D_EPS = 1e-6  # OmniSR's LayerNorm2d (before the FFNs and channel attentions).
_NORMALIZE_EPS = 1e-12  # torch F.normalize.


def layer_norm(eps: float, param_dtype: Dtype, name: str) -> nn.LayerNorm:
  """LayerNorm over channels (torch nn.LayerNorm / OmniSR's LayerNorm2d: biased variance of
  x - mean), computed in float32."""
  return nn.LayerNorm(epsilon=eps, dtype=jnp.float32, param_dtype=param_dtype,
                      use_fast_variance=False, name=name)


def _linear_taps(out_size, in_size):
  """torch bilinear (align_corners=False) taps of one axis: indices i0, i1 `[out]` int32 and
  weights w0, w1 `[out]` float32 (torch's float arithmetic, source index clamped at 0). numpy
  constants for static sizes; jnp ops (the same float32 steps) when a size is symbolic (the
  ESA resizes to the image size: `jax.export`)."""
  xp = np if all(isinstance(n, int) for n in (out_size, in_size)) else jnp
  f32 = np.float32
  scale = xp.asarray(in_size, f32) / xp.asarray(out_size, f32)
  src = scale * (xp.arange(out_size, dtype=f32) + f32(0.5)) - f32(0.5)
  src = xp.maximum(src, f32(0.0))
  i0 = src.astype(np.int32)
  w1 = src - i0.astype(f32)
  i1 = xp.minimum(i0 + 1, in_size - 1)
  return i0, i1, f32(1.0) - w1, w1


def resize_bilinear(x: jax.Array, height: int, width: int) -> jax.Array:
  """torch `F.interpolate(x, (height, width), mode='bilinear', align_corners=False)` in NHWC:
  `[B, h, w, C]` -> `[B, height, width, C]`; along W, then H, as torch's CPU kernel. Sizes
  may be symbolic."""
  for axis, size in ((2, width), (1, height)):
    i0, i1, w0, w1 = _linear_taps(size, x.shape[axis])
    shape = [1] * x.ndim
    shape[axis] = size
    w0, w1 = (jnp.asarray(w, x.dtype).reshape(shape) for w in (w0, w1))
    x = (jnp.take(x, i0, axis=axis, mode="clip") * w0
         + jnp.take(x, i1, axis=axis, mode="clip") * w1)
  return x


def grid_partition(x: jax.Array, window: int) -> jax.Array:
  """`[B, H, W, C]` -> `[B, nW, window^2, C]`: window (x, y) holds the pixels
  (i * H / window + x, j * W / window + y), i, j < window (einops '(w1 x) (w2 y)')."""
  b, h, w, c = x.shape
  x = x.reshape(b, window, h // window, window, w // window, c).transpose(0, 2, 4, 1, 3, 5)
  return x.reshape(b, (h // window) * (w // window), window * window, c)


def grid_reverse(windows: jax.Array, window: int, height: int, width: int) -> jax.Array:
  """Inverse of `grid_partition`: `[B, nW, window^2, C]` -> `[B, height, width, C]`."""
  b, _, _, c = windows.shape
  x = windows.reshape(b, height // window, width // window, window, window, c)
  return x.transpose(0, 3, 1, 4, 2, 5).reshape(b, height, width, c)


class SqueezeExcitation(nn.Module):
  """x * sigmoid(gate_3(silu(gate_1(mean over H, W of x)))); Linear layers without bias,
  hidden width int(C / 4)."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    hidden = int(c * 0.25)
    dense = lambda features, name: nn.Dense(
        features, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
        kernel_init=layers.torch_default_kernel_init, name=name)
    gate = jnp.mean(x.astype(jnp.float32), axis=(1, 2)).astype(self.dtype)  # [B, C]
    gate = dense(c, "gate_3")(nn.silu(dense(hidden, "gate_1")(gate)))
    return x * nn.sigmoid(gate)[:, None, None, :]


class MBConv(layers.LayerFactory):
  """x + fn_5(SE(gelu(fn_2(gelu(fn_0(x)))))): 1x1, depthwise 3x3, squeeze-excitation, 1x1
  (expansion 1, all convs with bias). `[B, H, W, C]`."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    y = nn.gelu(self.conv(c, "fn_0", kernel_size=1)(x), approximate=False)
    y = layers.DepthwiseConv2d(True, self.dtype, self.param_dtype, name="fn_2")(y)
    y = SqueezeExcitation(self.dtype, self.param_dtype, name="fn_4")(
        nn.gelu(y, approximate=False))
    return x + self.conv(c, "fn_5", kernel_size=1)(y)


class GatedFeedForward(layers.LayerFactory):
  """project_out(gelu(a) * b), [a, b] = dwconv(project_in(x)) (1x1 to 2C, depthwise 3x3,
  1x1 back to C; no biases). `[B, H, W, C]`."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    y = self.conv(2 * c, "project_in", kernel_size=1, use_bias=False)(x)
    y = layers.DepthwiseConv2d(False, self.dtype, self.param_dtype, name="dwconv")(y)
    a, b = jnp.split(y, 2, axis=-1)
    return self.conv(c, "project_out", kernel_size=1, use_bias=False)(
        nn.gelu(a, approximate=False) * b)


class SpatialAttention(nn.Module):
  """Multi-head self-attention among the window^2 pixels of each window (4 heads of C / 4),
  plus a relative position bias when `pe`.

  Attributes:
    window: window side (T = window^2 tokens).
    pe: learned relative position bias (`rel_pos_bias`, an `nn.Embed`).
    dtype: computation dtype (logits and softmax in float32).
    param_dtype: parameter dtype.
  """
  window: int
  pe: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """`[B, nW, T, C]` -> `[B, nW, T, C]`."""
    b, nw, t, c = x.shape
    head_dim = c // HEADS
    dense = lambda features, name: nn.Dense(
        features, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
        kernel_init=layers.torch_default_kernel_init, name=name)
    qkv = dense(3 * c, "to_qkv")(x.reshape(-1, c))
    q, k, v = qkv.reshape(b * nw, t, 3, HEADS, head_dim).transpose(2, 3, 0, 1, 4)
    logits = jnp.einsum("nxqd,nxkd->nxqk", q * jnp.asarray(head_dim**-0.5, q.dtype), k,
                        preferred_element_type=jnp.float32)  # [N, B * nW, T, T]
    if self.pe:
      bias = nn.Embed((2 * self.window - 1)**2, HEADS, dtype=jnp.float32,
                      param_dtype=self.param_dtype,
                      embedding_init=nn.initializers.normal(1.0), name="rel_pos_bias")(
                          swinir.relative_position_index(self.window))  # [T, T, N]
      logits = logits + bias.transpose(2, 0, 1)[:, None]
    probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    out = jnp.einsum("nxqk,nxkd->xqnd", probs, v).reshape(-1, c)
    return dense(c, "to_out_0")(out).reshape(b, nw, t, c)


def _cosine_logits(q: jax.Array, k: jax.Array, spec: str) -> jax.Array:
  """torch `F.normalize(q) @ F.normalize(k).T` over the token axes of `spec`, in float32."""
  def normalize(a, axes):
    a = a.astype(jnp.float32)
    norm = jnp.sqrt(jnp.sum(a * a, axis=axes, keepdims=True))
    return a / jnp.maximum(norm, _NORMALIZE_EPS)

  token_axes = (2, 4) if spec == "block" else (1, 3)
  q, k = normalize(q, token_axes), normalize(k, token_axes)
  if spec == "block":  # Groups: windows (x, y); tokens: pixels (i, j) of a window.
    return jnp.einsum("bxiyjhd,bxiyjhe->bxyhde", q, k)
  return jnp.einsum("bxiyjhd,bxiyjhe->bijhde", q, k)  # Groups (i, j); tokens (x, y).


class ChannelAttention(layers.LayerFactory):
  """Self-attention between the channels of each of 4 heads, a channel's token being its
  values over a group of pixels: the window^2 pixels of a window ('block', torch's
  Channel_Attention) or the pixels at one intra-window position across the windows ('grid',
  Channel_Attention_grid). Cosine logits times a per-head `temperature`; no biases.

  Attributes:
    window: window side.
    grid: group pixels as 'grid' instead of 'block'.
    dtype: computation dtype (normalisation, logits and softmax in float32).
    param_dtype: parameter dtype.
  """
  window: int
  grid: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """`[B, H, W, C]` (multiples of window) -> `[B, H, W, C]`."""
    b, h, w, c = x.shape
    ws = self.window
    temperature = self.param("temperature", nn.initializers.ones, (HEADS, 1, 1),
                             self.param_dtype)
    qkv = self.conv(3 * c, "qkv", kernel_size=1, use_bias=False)(x)
    qkv = layers.DepthwiseConv2d(False, self.dtype, self.param_dtype, name="qkv_dwconv")(qkv)
    # [B, H / ws, ws, W / ws, ws, heads, C / heads]: (x, i, y, j, h, d) of '(x i) (y j) (h d)'.
    q, k, v = (t.reshape(b, h // ws, ws, w // ws, ws, HEADS, c // HEADS)
               for t in jnp.split(qkv, 3, axis=-1))
    spec = "grid" if self.grid else "block"
    logits = _cosine_logits(q, k, spec) * jnp.asarray(temperature, jnp.float32)
    probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)  # [B, groups.., heads, d, d]
    if self.grid:
      out = jnp.einsum("bijhde,bxiyjhe->bxiyjhd", probs, v)
    else:
      out = jnp.einsum("bxyhde,bxiyjhe->bxiyjhd", probs, v)
    return self.conv(c, "project_out", kernel_size=1, use_bias=False)(out.reshape(b, h, w, c))


class PreNormResidual(nn.Module):
  """x + fn(norm(x)) for one of the OSA block's layers (torch's PreNormResidual with an
  nn.LayerNorm before spatial attention, Conv_PreNormResidual with a LayerNorm2d otherwise).

  Attributes:
    kind: 'block_attention' | 'grid_attention' | 'ffn' | 'block_channel' | 'grid_channel'.
    window: window side.
    pe: relative position bias in the spatial attention.
  """
  kind: str
  window: int
  pe: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    _, h, w, _ = x.shape
    ws, dt, pdt = self.window, self.dtype, self.param_dtype
    spatial = self.kind.endswith("_attention")
    y = layer_norm(_LN_EPS if spatial else _LN2D_EPS, pdt, "norm")(x).astype(dt)
    if spatial:
      grid = self.kind == "grid_attention"
      attention = SpatialAttention(ws, self.pe, dt, pdt, name="fn")
      if grid:
        y = grid_reverse(attention(grid_partition(y, ws)), ws, h, w)
      else:
        y = swinir.window_reverse(attention(swinir.window_partition(y, ws)), ws, h, w)
    elif self.kind == "ffn":
      y = GatedFeedForward(dt, pdt, name="fn")(y)
    else:
      y = ChannelAttention(ws, self.kind == "grid_channel", dt, pdt, name="fn")(y)
    return x + y


# The OSA block's nn.Sequential: index -> layer kind (the other indices are einops Rearranges).
OSA_LAYERS = {2: "block_attention", 4: "ffn", 5: "block_channel", 6: "ffn",
              8: "grid_attention", 10: "ffn", 11: "grid_channel", 12: "ffn"}


class OSABlock(nn.Module):
  """Omni self-attention block (torch's OSA_Block): MBConv, then the pre-norm residual layers
  of `OSA_LAYERS`. `[B, H, W, C]`, H and W multiples of `window`."""
  window: int
  pe: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = MBConv(self.dtype, self.param_dtype, name="layer_0")(x)
    for index, kind in OSA_LAYERS.items():
      x = PreNormResidual(kind, self.window, self.pe, self.dtype, self.param_dtype,
                          name=f"layer_{index}")(x)
    return x


class ESA(layers.LayerFactory):
  """Enhanced spatial attention: x * sigmoid(conv4(up(conv3(maxpool7/3(conv2(c1)))) +
  conv_f(c1))), c1 = conv1(x) with max(C // 4, 16) channels; conv2 3x3 stride 2 unpadded,
  `up` bilinear to H x W. Needs H, W >= 15. `[B, H, W, C]`."""
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    _, h, w, c = x.shape
    f = max(c // 4, 16)
    c1_ = self.conv(f, "conv1", kernel_size=1)(x)
    c1 = self.conv(f, "conv2", stride=2, padding=0)(c1_)
    pooled = nn.max_pool(c1, (7, 7), strides=(3, 3), padding="VALID")
    c3 = resize_bilinear(self.conv(f, "conv3")(pooled), h, w)
    c4 = self.conv(c, "conv4", kernel_size=1)(c3 + self.conv(f, "conv_f", kernel_size=1)(c1_))
    return x * nn.sigmoid(c4)


class OSAG(layers.LayerFactory):
  """Omni-scale aggregation group: esa(x + conv1x1(OSA blocks(x))). `[B, H, W, C]`."""
  block_num: int
  window: int
  pe: bool = True
  bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  scan_blocks: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    blocks = [OSABlock(self.window, self.pe, self.dtype, self.param_dtype,
                       name=f"residual_layer_{j}") for j in range(self.block_num)]
    y = trunk.apply_blocks(self, blocks, x, scan=self.scan_blocks)
    y = self.conv(x.shape[-1], f"residual_layer_{self.block_num}", kernel_size=1,
                  use_bias=self.bias)(y)
    return ESA(self.dtype, self.param_dtype, name="esa")(y + x)


class OmniSR(layers.SRModel):
  """OmniSR generator (module docstring). The released models (64 features, 5 OSAGs of 1 block,
  window 8, pe, bias) have 784,604 (x2), 793,259 (x3) and 805,376 (x4) parameters; the paper's
  772K / 780K / 792K are those less the relative position biases, LayerNorm2d and temperature
  parameters (12,880), which its counter (thop) skipped.

  Attributes:
    scale: upscale factor (spandrel's `up_scale`), one of `SUPPORTED_SCALES`.
    num_in_ch: input channels.
    num_out_ch: output channels.
    num_feat: feature channels C (a multiple of 4: 4 attention heads).
    block_num: OSA blocks per OSAG.
    pe: relative position bias in the spatial attentions.
    window_size: attention window side; inputs are zero-padded to a multiple of it.
    res_num: OSAGs.
    bias: biases in the input, output, upsampling and OSAG 1x1 convs.
    signed_range: map inputs [0, 1] to [-1, 1] and outputs back, as the official Omni-SR
      training and test code (its released checkpoints) does; spandrel (False) runs the
      network on [0, 1] directly, as community-trained models expect.
    scan_blocks: compile one OSAG (and one OSA block) and scan it over the groups' (blocks')
      parameters (`trunk.apply_blocks`; same parameters and values) instead of unrolling.
    remat: recompute each OSAG's activations in the backward pass instead of keeping them.
    dtype: computation dtype (norms, attention logits and softmax in float32); output float32.
    param_dtype: parameter dtype.
  """
  SUPPORTED_SCALES = (1, 2, 3, 4, 8)

  num_in_ch: int = 3
  num_out_ch: int = 3
  num_feat: int = 64
  block_num: int = 1
  pe: bool = True
  window_size: int = 8
  res_num: int = 5
  bias: bool = True
  signed_range: bool = False
  scan_blocks: bool = True
  remat: bool = False

  def __post_init__(self):
    errors = []
    if self.num_feat < 4 or self.num_feat % 4:
      errors.append(f"num_feat must be a positive multiple of 4 (4 heads), got {self.num_feat}")
    if self.window_size < 1:
      errors.append(f"window_size must be >= 1, got {self.window_size}")
    if self.block_num < 1 or self.res_num < 1:
      errors.append(f"block_num and res_num must be >= 1, got {self.block_num}, {self.res_num}")
    if errors:
      raise ValueError("OmniSR: " + "; ".join(errors))
    super().__post_init__()

  @property
  def input_multiple(self) -> int:
    """Tiles must be multiples of the window to keep the whole image's attention windows."""
    return self.window_size

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Super-resolves `x`.

    Args:
      x: `[B, H, W, num_in_ch]` in [0, 1], any H, W >= 1.
      train: unused (no dropout or batch statistics); kept for a uniform model signature.

    Returns:
      `[B, H*scale, W*scale, num_out_ch]` float32, not clipped.
    """
    del train
    h, w = x.shape[1:3]
    ws = self.window_size
    x = x.astype(jnp.float32)
    if self.signed_range:
      x = x * 2.0 - 1.0
    x = layers.pad_to_min_size(x, MIN_SIZE)
    x = jnp.pad(x, ((0, 0), (0, -x.shape[1] % ws), (0, -x.shape[2] % ws), (0, 0)))
    c = self.num_feat
    shallow = self.conv(c, "input", use_bias=self.bias)(x)
    groups = [OSAG(self.block_num, ws, self.pe, self.bias, self.dtype, self.param_dtype,
                   self.scan_blocks, name=f"residual_layer_{i}") for i in range(self.res_num)]
    y = trunk.apply_blocks(self, groups, shallow, scan=self.scan_blocks, remat=self.remat)
    y = self.conv(c, "output", use_bias=self.bias)(y) + shallow
    y = self.conv(self.num_out_ch * self.scale**2, "up_0", use_bias=self.bias)(y)
    y = layers.pixel_shuffle(y, self.scale).astype(jnp.float32)
    if self.signed_range:
      y = (y + 1.0) / 2.0
    return y[:, :h * self.scale, :w * self.scale]
