"""Inference on images of any size: load a trained generator, upscale with overlapping tiles.

Tiling (`tile_spans`, `upscale_image`). Each axis of length n is cut into output cores
[x0, x0 + tile) (x0 = 0, tile, 2 tile, ...; the last one shorter), and each core is computed from
an input window of fixed length `m = min(n, tile + 2 pad)` starting at
`s = clip(x0 - pad, 0, n - m)`, then cropped from the window's output. At an image border the
window is shifted inward instead of padded, so the model's zero padding falls where it falls on
the whole image. Claim: the core is >= pad from every window edge that is not an image border.
  * s = x0 - pad: the left margin is pad; the right one is at least x0 - pad + m - (x0 + tile)
    = m - tile - pad, which is pad when m = tile + 2 pad; else m = n and the right edge is n.
  * s = 0 > x0 - pad: the left edge is the image border; the right edge is n if m = n, else
    m = tile + 2 pad > x0 + tile + pad: a right margin > pad.
  * s = n - m < x0 - pad: the right edge is the image border; the left margin x0 - s > pad.
So a model whose outputs depend on inputs at most r LR pixels away (its receptive-field radius)
gives the same core from the window as from the whole image when pad >= r: tiled output equals
untiled output up to float rounding. All windows have one shape: one compilation per image size.
Models that need sizes divisible by k (`input_multiple`: RRDBNet x2 / x1 pixel-unshuffle) get the
image reflect-padded to a multiple of k (the padding's output is cropped, as Real-ESRGAN does),
and tile and pad rounded up to multiples of k, so every window starts on the model's grid.
"""

import functools
import itertools
import json
import math
import os
from typing import Any, Callable, List, Optional, Tuple

import ml_collections
import numpy as np

from jaxsr import builders
from jaxsr import checkpointing
from jaxsr import evaluate
from jaxsr import models
from jaxsr.ops import imresize

Progress = Callable[[int, int], None]  # (tiles done, tiles in this pass)
ALPHA_UPSAMPLERS = ("model", "bicubic")


def _tuples(value: Any) -> Any:
  """JSON lists -> tuples (model fields must be hashable), recursively."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a training run saved as `<workdir>/config.json`; ValueError if missing."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise ValueError(f"No config.json in '{workdir}': pass the workdir of a training run "
                     "(python -m jaxsr.main writes it there), or a checkpoint "
                     "<workdir>/checkpoints/<step>.")
  with open(path) as f:
    return ml_collections.ConfigDict(_tuples(json.load(f)))


def load_generator(workdir: str = "", checkpoint: str = "", which: str = "best",
                   use_ema: bool = True, dtype: Optional[str] = None
                   ) -> Tuple[ml_collections.ConfigDict, Any, dict]:
  """The generator of a training run, ready for `make_upscaler`.

  Args:
    workdir: a run's workdir (holds config.json and checkpoints/).
    checkpoint: instead of `workdir`: `<workdir>/checkpoints/<step>` (config two levels up), or
      a workdir.
    which: 'best' | 'latest' | '<step>', when no step is named by `checkpoint`.
    use_ema: the EMA parameters when the run kept an EMA.
    dtype: computation dtype 'float32' | 'bfloat16'; None keeps the run's `config.dtype`.
      Parameters stay float32; layers cast them to the computation dtype.

  Returns:
    (config, model, variables); variables are {} for parameter-free models (bicubic).
    `config.eval.checkpoint` is set to the step restored (e.g. 'best' -> '5000').

  Raises:
    ValueError: neither or both of workdir/checkpoint, no config.json, no such checkpoint, or a
      checkpoint that does not fit the config's model.
  """
  if bool(workdir) == bool(checkpoint):
    raise ValueError("Pass exactly one of workdir and checkpoint.")
  if checkpoint:
    workdir, which = checkpointing.split_checkpoint_path(checkpoint, default=which)
  config = load_config(workdir)
  config.eval.checkpoint = str(which)
  config.eval.use_ema = bool(use_ema)
  if dtype is not None:
    config.dtype = dtype
  model = builders.model_from_config(config)
  variables, step = evaluate.restore_eval_variables(config, workdir, model)
  if step is not None:
    config.eval.checkpoint = str(step)
  return config, model, variables


def input_multiple(model) -> int:
  """k such that sizes and tile offsets must be multiples of k: the model's own
  `input_multiple` (RRDBNet x2 / x1: 2 / 4, pixel unshuffle; window sizes), the seed generator (2**num_down: stride-2 encoder), SwinIR (its window: it pads
  other sizes itself, but window-aligned tiles keep the attention windows of the whole image);
  else 1."""
  if hasattr(model, "input_multiple"):
    return int(model.input_multiple)
  if isinstance(model, models.SeedGenerator):
    return 2**model.num_down
  if isinstance(model, models.SwinIR):
    return model.window_size
  return 1


def make_upscaler(model, variables) -> Callable[[np.ndarray], np.ndarray]:
  """`lr [h, w, 3] in [0, 1] -> sr [h*s, w*s, 3]` float32 numpy, clipped to [0, 1] (jit)."""
  return functools.partial(evaluate.make_sr_fn(builders.make_apply_fn(model)), variables)


def tile_spans(size: int, tile: int, pad: int) -> Tuple[int, List[Tuple[int, int, int]]]:
  """Tiles of one axis (see the module docstring).

  Args:
    size: axis length n.
    tile: core length (> 0).
    pad: context on each side of a core.

  Returns:
    (window length m = min(n, tile + 2 pad), [(core start, core end, window start), ...]);
    the cores partition [0, n).
  """
  window = min(size, tile + 2 * pad)
  return window, [(x0, min(x0 + tile, size), min(max(x0 - pad, 0), size - window))
                  for x0 in range(0, size, tile)]


def _round_up(x: int, k: int) -> int:
  return -(-x // k) * k


def upscale_image(sr_fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, scale: int,
                  tile: int = 0, tile_pad: int = 10, progress: Optional[Progress] = None,
                  multiple: int = 1) -> np.ndarray:
  """Upscales an RGB image tile by tile (bounded memory; see the module docstring).

  Args:
    sr_fn: `lr [h, w, 3] -> sr [h*scale, w*scale, 3]` in [0, 1] (`make_upscaler`).
    image: float32 `[H, W, 3]` in [0, 1].
    scale: the model's upscale factor.
    tile: core side in LR pixels; 0 for the whole image at once.
    tile_pad: LR pixels of context around each core; exact when >= the model's receptive-field
      radius.
    progress: called as `progress(done, total)` before the first tile (done = 0) and after
      each tile.
    multiple: the model needs sizes divisible by this (`input_multiple`).

  Returns:
    float32 `[H*scale, W*scale, 3]` in [0, 1].
  """
  height, width = image.shape[:2]
  padded = np.pad(image, ((0, -height % multiple), (0, -width % multiple), (0, 0)),
                  mode="reflect")
  size_h, size_w = padded.shape[:2]
  tile = _round_up(tile, multiple) if tile > 0 else max(size_h, size_w)
  pad = _round_up(tile_pad, multiple)
  window_h, rows = tile_spans(size_h, tile, pad)
  window_w, cols = tile_spans(size_w, tile, pad)
  out = np.empty((height * scale, width * scale, image.shape[2]), np.float32)
  total = len(rows) * len(cols)
  if progress is not None:
    progress(0, total)
  for done, ((y0, y1, wy), (x0, x1, wx)) in enumerate(itertools.product(rows, cols), 1):
    sr = sr_fn(padded[wy:wy + window_h, wx:wx + window_w])
    y1, x1 = min(y1, height), min(x1, width)  # Drop the output of the multiple-padding.
    out[y0 * scale:y1 * scale, x0 * scale:x1 * scale] = sr[(y0 - wy) * scale:(y1 - wy) * scale,
                                                           (x0 - wx) * scale:(x1 - wx) * scale]
    if progress is not None:
      progress(done, total)
  return out


def output_size(height: int, width: int, outscale: float) -> Tuple[int, int]:
  """`(ceil(height * outscale), ceil(width * outscale))` (MATLAB's rule), the products rounded to
  6 decimals first so that float error (50 * 1.1 = 55.000000000000007) adds no pixel."""
  return (math.ceil(round(height * outscale, 6)), math.ceil(round(width * outscale, 6)))


def upscale(sr_fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, scale: int,
            tile: int = 0, tile_pad: int = 10, outscale: Optional[float] = None,
            alpha_upsampler: str = "model", progress: Optional[Progress] = None,
            multiple: int = 1) -> np.ndarray:
  """Upscales an L, LA, RGB or RGBA image with an RGB model (`upscale_image` per pass).

  Gray goes through the model replicated to RGB, and comes back as the mean of the channels.
  Alpha is upscaled on its own: through the model the same way (`alpha_upsampler='model'`), or by
  MATLAB bicubic (`'bicubic'`, clipped). With `outscale` != `scale` the result is resized by
  `outscale / scale` with MATLAB bicubic (`imresize_np`, on the host, one channel at a time;
  memory grows with the output) and clipped to [0, 1]; its size is `output_size(H, W, outscale)`.

  Args:
    sr_fn: see `upscale_image`.
    image: float32 `[H, W, C]` in [0, 1], C = 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA).
    scale: the model's upscale factor.
    tile: see `upscale_image`.
    tile_pad: see `upscale_image`.
    outscale: final upscale factor (any float > 0); None for `scale`.
    alpha_upsampler: 'model' | 'bicubic'.
    progress: see `upscale_image` (called again for each pass: colour, then alpha).
    multiple: see `upscale_image`.

  Returns:
    float32 `[H', W', C]` in [0, 1]: H' = H * scale, or ceil(H * outscale).
  """
  if alpha_upsampler not in ALPHA_UPSAMPLERS:
    raise ValueError(f"alpha_upsampler={alpha_upsampler!r} is not one of {ALPHA_UPSAMPLERS}")
  channels = image.shape[2]
  if channels not in (1, 2, 3, 4):
    raise ValueError(f"Expected 1 to 4 channels (L, LA, RGB, RGBA), got {image.shape}")
  run = functools.partial(upscale_image, sr_fn, scale=scale, tile=tile, tile_pad=tile_pad,
                          progress=progress, multiple=multiple)
  through_model = lambda gray: run(np.repeat(gray, 3, axis=2)).mean(axis=2, keepdims=True)
  color = image[..., :3] if channels >= 3 else image[..., :1]
  parts = [run(color) if channels >= 3 else through_model(color)]
  if channels in (2, 4):
    alpha = image[..., -1:]
    if alpha_upsampler == "model":
      parts.append(through_model(alpha))
    else:
      parts.append(np.clip(imresize.imresize_np(alpha, scale), 0.0, 1.0))
  out = np.concatenate(parts, axis=2) if len(parts) > 1 else parts[0]
  if outscale is None or outscale == scale:
    return out
  out_h, out_w = output_size(*image.shape[:2], outscale)
  # imresize_np's size is ceil(H * scale * (outscale / scale)): float error may add one row.
  resized = np.empty((out_h, out_w, channels), np.float32)
  for c in range(channels):
    resized[..., c:c + 1] = imresize.imresize_np(out[..., c:c + 1], outscale / scale)[:out_h,
                                                                                      :out_w]
  return np.clip(resized, 0.0, 1.0, out=resized)
