"""MATLAB `rgb2ycbcr` / `ycbcr2rgb` (ITU-R BT.601, studio swing), as in BasicSR.

Every function works on numpy and JAX arrays alike (one implementation): the colour
matrices are applied as elementwise products summed over channels, which keeps the result
in the input's array type and dtype and avoids low-precision matmul passes on GPU/TPU.
Inputs and outputs are floats in [0, 1] (Y in [16/255, 235/255], Cb/Cr in [16/255, 240/255]).
"""

import numpy as np

# Rows: input channel (R, G, B); columns: output channel (Y, Cb, Cr); for [0, 255] data.
_RGB_TO_YCBCR = np.array([[65.481, -37.797, 112.0],
                          [128.553, -74.203, -93.786],
                          [24.966, 112.0, -18.214]]) / 255.0
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0
# MATLAB's (rounded) inverse, as in BasicSR's `ycbcr2rgb`. Rows: Y, Cb, Cr; cols: R, G, B.
_YCBCR_TO_RGB = np.array([[0.00456621, 0.00456621, 0.00456621],
                          [0.0, -0.00153632, 0.00791071],
                          [0.00625893, -0.00318811, 0.0]]) * 255.0
_RGB_OFFSET = np.array([-222.921, 135.576, -276.836]) / 255.0
# MATLAB `rgb2gray` weights (BT.601 luma, full swing, no offset).
_RGB_TO_GRAY = np.array([[0.298936021293775], [0.587043074451121], [0.114020904255103]])


def _like(x, constant):
  """`constant` in the float dtype of `x` (float64 constants would upcast float32 inputs)."""
  if np.dtype(x.dtype).kind in "biu":  # Integer coefficients would be silently truncated.
    raise TypeError(f"Expected a float image in [0, 1], got dtype {x.dtype}.")
  return np.asarray(constant, dtype=x.dtype)


def _mix_channels(x, matrix, offset):
  """`x @ matrix + offset` over the last axis, as a sum of elementwise products."""
  return (x[..., :, None] * _like(x, matrix)).sum(axis=-2) + _like(x, offset)


def rgb_to_y(x):
  """Luma of MATLAB `rgb2ycbcr`: RGB `[..., 3]` in [0, 1] -> Y `[...]` in [16/255, 235/255]."""
  return _mix_channels(x, _RGB_TO_YCBCR[:, :1], _YCBCR_OFFSET[:1])[..., 0]


def rgb_to_ycbcr(x):
  """MATLAB `rgb2ycbcr`: float RGB `[..., 3]` in [0, 1] -> YCbCr `[..., 3]` in [0, 1]."""
  return _mix_channels(x, _RGB_TO_YCBCR, _YCBCR_OFFSET)


def ycbcr_to_rgb(x):
  """MATLAB `ycbcr2rgb`: float YCbCr `[..., 3]` in [0, 1] -> RGB `[..., 3]` (not clipped)."""
  return _mix_channels(x, _YCBCR_TO_RGB, _RGB_OFFSET)


def rgb_to_gray(x):
  """MATLAB `rgb2gray`: float RGB `[..., 3]` in [0, 1] -> gray `[...]` in [0, 1]."""
  return _mix_channels(x, _RGB_TO_GRAY, np.zeros(1))[..., 0]

