"""Writes tests/data/degradation_golden.npz: Real-ESRGAN's degradations computed by the real
BasicSR / Real-ESRGAN code on CPU torch, as golden vectors for jaxsr's JAX re-implementation.

Not run or imported by the tests (torch is not a dependency of jaxsr); documents how the
committed file was made:
  python -m venv /tmp/torchvenv
  /tmp/torchvenv/bin/pip install torch numpy scipy opencv-python-headless pillow
  /tmp/torchvenv/bin/pip install --no-deps --no-build-isolation basicsr==1.4.2 realesrgan==0.3.0
  /tmp/torchvenv/bin/python tests/data/make_degradation_golden.py
Made with torch 2.13.0+cpu, numpy 2.4.6, scipy 1.17.1, opencv-python-headless 5.0.0.93,
pillow 13.0.0, basicsr 1.4.2, realesrgan 0.3.0 (the last two only provide the code read below).

The code under test is the packages' own files, imported by path without running
`basicsr/__init__.py` (which pulls in torchvision, tqdm, lmdb, ...):
`basicsr/data/degradations.py` (kernels, noise), `basicsr/utils/img_process_util.py`
(filter2D, USMSharp) and `basicsr/utils/diffjpeg.py` (DiffJPEG); resizing is
`torch.nn.functional.interpolate`, called as `realesrgan/models/realesrgan_model.py` does.
ONE function is a stand-in: `degradations.py` imports
`torchvision.transforms.functional_tensor.rgb_to_grayscale` at module level, torchvision is not
installed in this venv (and newer torchvision drops `functional_tensor`), so `sys.modules` gets
a module whose `rgb_to_grayscale` is torchvision's formula verbatim:
`(0.2989 * r + 0.587 * g + 0.114 * b)` in the image's dtype, unsqueezed at dim -3 (expanded to 3
channels when asked). It is used by `add_poisson_noise_pt` (gray noise) and its result is
stored as `gray_output`.

Images are crops of Set14 images (shared/datasets/Set14/HR, read with PIL as RGB uint8; see
CROPS): photographs, the comic, and for resizing two crops of the ppt3 book cover, whose flat
areas keep the file small. Every image array is NHWC (batch, height, width, channel), RGB;
torch works on NCHW, converted at the boundary. An 8-bit input is stored as uint8 and fed to
torch as `uint8 / 255.` in float32. Deterministic: fixed numpy / torch seeds, one torch thread
(two runs write byte-identical files).

Behaviours of the reference worth knowing (checked while making this file):
* F.interpolate(scale_factor=s) makes floor(in * s) (python float product) pixels but maps
  coordinates with 1 / s, not in / out ('bilinear' / 'bicubic': src = (dst + 0.5) / s - 0.5),
  so it differs from size=(out_h, out_w) at the same output size; 'area' is
  adaptive_avg_pool2d(output size) and ignores s. 'bicubic' (A = -0.75) is not clamped.
* filter2D is a cross-correlation (no flip) after torch 'reflect' padding (the edge pixel is
  not repeated: numpy 'reflect', cv2 BORDER_REFLECT_101), and does not clamp (sinc kernels
  overshoot). Every Real-ESRGAN kernel is point-symmetric, hence the noisy shared kernel.
* DiffJPEG: the standard luma / chroma tables are stored transposed ([u, v] = table[v][u]
  with u the vertical frequency); factor = 50 / q below 50, 2 - q / 50 from 50 (float32 for a
  tensor quality), tables scaled continuously with no rounding or clamp to [1, 255]; padding
  to a multiple of 16 is with zeros; 4:2:0 by 2 x 2 averages, upsampled by repetition; the
  output is clamped to [0, 1] but not rounded to 8 bits.
* Gaussian gray noise is ONE [h, w] field for the whole batch (scaled per sample by sigma);
  Poisson gray noise is per sample.

npz keys (all arrays; B batch, outputs are float32 in [0, 1] unless said):
  Kernels (degradations.py; rows as RealESRGANDataset / random_mixed_kernels would make them):
    kernel_params    float64 [N = 71, 7] rows (type_id, kernel_size, sigma_x, sigma_y, theta, beta,
                     omega_c); type_id 0 iso, 1 aniso, 2 generalized_iso, 3 generalized_aniso,
                     4 plateau_iso, 5 plateau_aniso, 6 sinc. Unused fields are 0; iso types
                     store sigma_y = sigma_x and theta = 0 (as random_bivariate_* pass them).
    kernels          float64 [N, 21, 21] bivariate_Gaussian / bivariate_generalized_Gaussian /
                     bivariate_plateau(size, sx, sy, theta[, beta], isotropic=...) or
                     circular_lowpass_kernel(omega_c, size, pad_to=False), then
                     np.pad(k, (21 - size) // 2) as RealESRGANDataset does. Index [row, col];
                     the package's grid is (x = column offset, y = row offset).
                     Rows 0..60 are hand-picked (KERNEL_ROWS), 61..70 random (KERNEL_SEED).
  filter2D (img_process_util.filter2D, reflect padding, cross-correlation):
    filter_input          uint8   [3, 37, 45, 3]
    filter_kernels        float32 [3, 21, 21]  kernels[FILTER_ROWS] as torch.FloatTensor
    filter_output         float32 [3, 37, 45, 3]  one kernel per sample (grouped conv path)
    filter_shared_kernel  float32 [1, 21, 21]  a 1-kernel batch (the shared-kernel path); an
                          aniso Gaussian with the package's multiplicative kernel noise
                          (random_bivariate_Gaussian(..., noise_range=(0.75, 1.25))), so that it
                          is NOT point-symmetric and a flipped (true convolution) kernel fails.
    filter_shared_output  float32 [3, 37, 45, 3]  same input
  USM (USMSharp() defaults radius=50 -> 51, sigma=0 -> 8; forward(weight=0.5, threshold=10)):
    usm_input   uint8   [2, 64, 72, 3]
    usm_output  float32 [2, 64, 72, 3]
    usm_kernel  float64 [51, 51]  the module's float32 `kernel` buffer (cv2.getGaussianKernel
                outer product cast to float32), widened to float64 exactly.
  Resize (F.interpolate, default align_corners, no antialias):
    resize_input  uint8 [2, 40, 52, 3]
    resize_scales float64 [7] = (0.15, 0.37, 0.5, 0.8, 1.0, 1.23, 1.5)
    resize_scale_{mode}_{i}  float32 [2, floor(40 s), floor(52 s), 3]:
                  F.interpolate(x, scale_factor=resize_scales[i], mode=mode) (first degradation)
    resize_sizes  int64 [5, 2] = ((12, 15), (30, 52), (40, 52), (47, 61), (100, 130))
    resize_size_{mode}_{j}   float32 [2, h_j, w_j, 3]: F.interpolate(x, size=(h_j, w_j), mode=mode)
                  for mode in ('area', 'bilinear', 'bicubic').
  JPEG (DiffJPEG(differentiable=False)(torch.clamp(x, 0, 1), quality=q), as RealESRGANModel):
    jpeg_input          uint8   [5, 64, 80, 3]
    jpeg_quality        float32 [5] = (30, 47.5, 50, 71.3, 95), one per sample (a float32 tensor;
                        DiffJPEG overwrites it in place with the factor, so a clone is passed)
    jpeg_output         float32 [5, 64, 80, 3]
    jpeg_odd_input      uint8   [2, 50, 70, 3]  (not a multiple of 16: zero-padded to 64 x 80)
    jpeg_odd_quality    float32 [2] = (40, 85)
    jpeg_odd_output     float32 [2, 50, 70, 3]
    jpeg_scalar_output  float32 [5, 64, 80, 3]  jpeg_input at the python float quality 60.0
  Gaussian noise, add_gaussian_noise_pt(x, sigma, gray_noise, clip=True, rounds=False), seeded
  with torch.manual_seed(GAUSS_SEED); the draws it made are replayed and stored:
    gauss_input   uint8   [3, 24, 28, 3]
    gauss_sigma   float32 [3] = (1.0, 15.5, 30.0)   (on the 0..255 scale)
    gauss_gray    float32 [3] = (0, 1, 1)
    gauss_output  float32 [3, 24, 28, 3]
    gauss_gray_draw   float32 [24, 28]  torch.randn(h, w): ONE field shared by the whole batch
    gauss_color_draw  float32 [3, 24, 28, 3]  torch.randn(b, c, h, w), drawn second, as NHWC
    output == clamp(x + where-mixed noise, 0, 1) with noise = color_draw * sigma / 255 *
    (1 - gray) + gray_draw * sigma / 255 * gray (asserted bit-exact below).
  Poisson noise, add_poisson_noise_pt(x, scale, clip=True, rounds=False, gray_noise=gray),
  seeded with torch.manual_seed(POISSON_SEED) (and POISSON_SEED + 1 for the offset case):
    poisson_input   uint8   [3, 24, 28, 3]  (sample 2 is a flat-coloured slide crop: few levels)
    poisson_scale   float32 [3] = (0.05, 1.3, 3.0)
    poisson_gray    float32 [3] = (1, 0, 1)
    poisson_output        float32 [3, 24, 28, 3]
    poisson_gray_counts   float32 [3, 24, 28, 1]  torch.poisson(gray_q * gray_vals), drawn
                          first (for every sample, whatever its gray flag)
    poisson_color_counts  float32 [3, 24, 28, 3]  torch.poisson(img_q * color_vals), second
    poisson_gray_vals     float32 [3]  2 ** ceil(log2(#unique levels)) of gray_q per sample
    poisson_color_vals    float32 [3]  the same over all channels of img_q
    where img_q = clamp(round(x * 255), 0, 255) / 255 and gray_q the same of
    rgb_to_grayscale(x) (of the UNROUNDED x); noise = (counts / vals - q), mixed by gray, times
    scale; output = clamp(x + noise, 0, 1) with the unrounded x.
    poisson_offset_input  float32 [3, 24, 28, 3]  poisson_input / 255 plus an offset of 0.3/255
                          or 0.7/255 (a checkerboard), clipped to [0, 1]: off the 8-bit levels,
                          so the function's rounding matters (0.7 rounds up a level)
    poisson_offset_output, poisson_offset_gray_counts, poisson_offset_color_counts,
    poisson_offset_gray_vals, poisson_offset_color_vals: as above, same scale / gray.
  Grayscale (the stand-in, documenting the formula):
    gray_input   uint8   [3, 24, 28, 3]  = poisson_input
    gray_output  float32 [3, 24, 28, 1]  rgb_to_grayscale(gray_input / 255.)
"""

import importlib.util
import math
import os
import sys
import types

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "degradation_golden.npz")
# The project's shared/ folder sits beside the repository (../shared from its root).
SET14 = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "datasets", "Set14", "HR"))

KERNEL_SEED = 2024  # numpy RandomState for the random kernel rows and the noisy shared kernel.
GAUSS_SEED = 7
POISSON_SEED = 11

# Crops (image, top, left) of Set14 HR images; the size is set by each case.
CROPS = {
    "filter": (("baboon", 40, 120), ("zebra", 170, 250), ("comic", 90, 60)),
    "usm": (("lenna", 240, 240), ("comic", 150, 100)),
    # Sharp-edged text / flat-colour crops: every output pixel of a photograph crop is float
    # noise that does not compress (a zebra crop instead of one of these adds ~500 KiB), while
    # edges crossing the borders still exercise the coordinate mapping, taps and border clamping.
    "resize": (("ppt3", 40, 230),    # black "Po" on white
               ("ppt3", 150, 200)),  # orange box edge, white, a black glyph
    "jpeg": (("baboon", 380, 20),    # fur
             ("comic", 100, 80),     # drawn lines
             ("ppt3", 40, 230),      # black text on white
             ("monarch", 420, 640),  # smooth out-of-focus background
             ("zebra", 170, 250)),   # stripes
    "jpeg_odd": (("lenna", 250, 250), ("ppt3", 596, 20)),  # eye; white text on black bar
    "gauss": (("pepper", 200, 200), ("flowers", 100, 300), ("face", 120, 120)),
    # Sample 2: the edge of a flat orange box on white: few distinct levels, so `vals` is 16 / 8
    # (colour / gray) where the photograph crops give 64 / 32 and 64 / 16.
    "poisson": (("baboon", 380, 20), ("monarch", 440, 700), ("ppt3", 192, 112)),
}

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
                "plateau_aniso", "sinc")
PI = math.pi
# Hand-picked kernel rows: (type_id, size, sigma_x, sigma_y, theta, beta, omega_c). Sigma near both
# ends of Real-ESRGAN's [0.2, 3], theta over [-pi, pi], beta over [0.5, 4] (generalized) and
# [1, 2] (plateau), omega_c over [pi/3, pi] for sizes < 13 and [pi/5, pi] for sizes >= 13.
KERNEL_ROWS = (
    # iso (sigma_y = sigma_x, theta = 0 stored)
    (0, 7, 0.2, 0.2, 0, 0, 0), (0, 9, 0.21, 0.21, 0, 0, 0), (0, 21, 1.0, 1.0, 0, 0, 0),
    (0, 11, 2.9, 2.9, 0, 0, 0), (0, 21, 3.0, 3.0, 0, 0, 0), (0, 13, 0.5, 0.5, 0, 0, 0),
    (0, 15, 1.7, 1.7, 0, 0, 0), (0, 17, 2.2, 2.2, 0, 0, 0),
    # aniso
    (1, 7, 0.2, 3.0, 0.3, 0, 0), (1, 21, 3.0, 0.2, -2.5, 0, 0), (1, 9, 1.0, 2.9, 2.0, 0, 0),
    (1, 13, 2.9, 0.21, -PI, 0, 0), (1, 15, 0.21, 1.0, PI, 0, 0), (1, 17, 1.5, 1.5, 1.0, 0, 0),
    (1, 19, 2.0, 0.7, -0.7, 0, 0), (1, 21, 0.6, 2.4, 1.9, 0, 0), (1, 11, 3.0, 3.0, -1.6, 0, 0),
    # generalized_iso
    (2, 7, 0.2, 0.2, 0, 0.5, 0), (2, 9, 1.0, 1.0, 0, 0.5, 0), (2, 11, 2.9, 2.9, 0, 4.0, 0),
    (2, 21, 3.0, 3.0, 0, 0.5, 0), (2, 13, 1.3, 1.3, 0, 1.0, 0), (2, 15, 0.21, 0.21, 0, 2.0, 0),
    (2, 17, 2.0, 2.0, 0, 3.3, 0), (2, 19, 0.8, 0.8, 0, 0.75, 0),
    # generalized_aniso
    (3, 21, 0.2, 3.0, 0.4, 0.5, 0), (3, 7, 3.0, 0.2, -2.2, 4.0, 0), (3, 9, 1.0, 2.9, 2.9, 1.5, 0),
    (3, 13, 2.9, 1.0, -PI, 0.7, 0), (3, 15, 0.5, 0.21, 1.2, 2.5, 0),
    (3, 17, 2.5, 1.2, -0.5, 1.0, 0), (3, 19, 1.8, 0.6, 3.1, 3.7, 0),
    (3, 11, 0.7, 1.9, -1.9, 0.55, 0),
    # plateau_iso
    (4, 7, 0.2, 0.2, 0, 1.0, 0), (4, 9, 1.0, 1.0, 0, 2.0, 0), (4, 11, 3.0, 3.0, 0, 1.5, 0),
    (4, 21, 2.9, 2.9, 0, 1.0, 0), (4, 13, 0.21, 0.21, 0, 2.0, 0), (4, 15, 1.6, 1.6, 0, 1.25, 0),
    (4, 17, 2.3, 2.3, 0, 1.8, 0), (4, 19, 0.9, 0.9, 0, 1.1, 0),
    # plateau_aniso
    (5, 21, 0.2, 3.0, -3.0, 1.0, 0), (5, 7, 3.0, 0.2, 2.5, 2.0, 0), (5, 9, 2.9, 1.0, 1.7, 1.5, 0),
    (5, 11, 1.0, 2.9, -PI, 1.2, 0), (5, 13, 0.21, 0.6, 0.8, 1.9, 0),
    (5, 15, 2.0, 0.4, -1.3, 1.05, 0), (5, 17, 1.2, 2.7, PI, 1.6, 0),
    (5, 19, 0.5, 1.5, -2.0, 1.35, 0),
    # sinc (circular_lowpass_kernel)
    (6, 7, 0, 0, 0, 0, PI / 3), (6, 7, 0, 0, 0, 0, PI), (6, 9, 0, 0, 0, 0, PI),
    (6, 11, 0, 0, 0, 0, 2.0), (6, 11, 0, 0, 0, 0, PI / 3 + 0.05), (6, 13, 0, 0, 0, 0, PI / 5),
    (6, 13, 0, 0, 0, 0, 0.9), (6, 15, 0, 0, 0, 0, PI), (6, 17, 0, 0, 0, 0, 1.1),
    (6, 19, 0, 0, 0, 0, 2.5), (6, 21, 0, 0, 0, 0, PI / 5), (6, 21, 0, 0, 0, 0, PI),
)
NUM_RANDOM_KERNELS = 10
# Rows of `kernels` used by filter2D's per-sample case (indices into KERNEL_ROWS): the aniso
# (21, 0.6, 2.4, 1.9), the generalized aniso (19, 1.8, 0.6, 3.1, beta 3.7) and the sinc (19, 2.5).
FILTER_ROWS = (15, 31, 58)

RESIZE_MODES = ("area", "bilinear", "bicubic")
RESIZE_SCALES = (0.15, 0.37, 0.5, 0.8, 1.0, 1.23, 1.5)
RESIZE_SIZES = ((12, 15), (30, 52), (40, 52), (47, 61), (100, 130))


def _rgb_to_grayscale(img: torch.Tensor, num_output_channels: int = 1) -> torch.Tensor:
  """Stand-in for torchvision.transforms.functional_tensor.rgb_to_grayscale (its formula).

  Args:
    img: [..., 3, H, W] tensor.
    num_output_channels: 1 or 3.

  Returns:
    [..., num_output_channels, H, W] luma `0.2989 R + 0.587 G + 0.114 B` in img's dtype.
  """
  if num_output_channels not in (1, 3):
    raise ValueError("num_output_channels should be either 1 or 3")
  r, g, b = img.unbind(dim=-3)
  l_img = (0.2989 * r + 0.587 * g + 0.114 * b).to(img.dtype).unsqueeze(dim=-3)
  if num_output_channels == 3:
    return l_img.expand(img.shape)
  return l_img


def _import_by_path(name: str, package: str, relpath: str) -> types.ModuleType:
  """Imports `<package root>/<relpath>` as module `name` without the package's __init__."""
  root = importlib.util.find_spec(package).submodule_search_locations[0]
  spec = importlib.util.spec_from_file_location(name, os.path.join(root, relpath))
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  spec.loader.exec_module(module)
  return module


def load_modules():
  """Returns (degradations, img_process_util, diffjpeg), the packages' own files.

  Registers the torchvision stand-in first (see the module docstring).
  """
  functional_tensor = types.ModuleType("torchvision.transforms.functional_tensor")
  functional_tensor.rgb_to_grayscale = _rgb_to_grayscale
  transforms = types.ModuleType("torchvision.transforms")
  transforms.functional_tensor = functional_tensor
  torchvision = types.ModuleType("torchvision")
  torchvision.transforms = transforms
  sys.modules.update({"torchvision": torchvision, "torchvision.transforms": transforms,
                      "torchvision.transforms.functional_tensor": functional_tensor})
  degradations = _import_by_path("basicsr_degradations", "basicsr", "data/degradations.py")
  img_process_util = _import_by_path("basicsr_img_process_util", "basicsr",
                                     "utils/img_process_util.py")
  diffjpeg = _import_by_path("basicsr_diffjpeg", "basicsr", "utils/diffjpeg.py")
  return degradations, img_process_util, diffjpeg


# ------------------------------------------------------------------------------------------- #
# Images and layout conversion.
# ------------------------------------------------------------------------------------------- #
def crops(case: str, height: int, width: int) -> np.ndarray:
  """uint8 [B, height, width, 3] RGB crops CROPS[case] of the Set14 HR images."""
  out = []
  for name, top, left in CROPS[case]:
    image = np.asarray(Image.open(os.path.join(SET14, f"{name}.png")).convert("RGB"))
    crop = image[top:top + height, left:left + width]
    assert crop.shape == (height, width, 3), (name, crop.shape)
    out.append(crop)
  return np.stack(out)


def to_torch(nhwc: np.ndarray) -> torch.Tensor:
  """NHWC uint8 (read as x / 255.) or float array -> NCHW float32 tensor."""
  x = torch.from_numpy(np.ascontiguousarray(nhwc))
  x = x.float() / 255. if x.dtype == torch.uint8 else x.float()
  return x.permute(0, 3, 1, 2).contiguous()


def to_nhwc(x: torch.Tensor) -> np.ndarray:
  """NCHW tensor -> NHWC float32 array."""
  return x.detach().permute(0, 2, 3, 1).numpy().astype(np.float32)


# ------------------------------------------------------------------------------------------- #
# Cases.
# ------------------------------------------------------------------------------------------- #
def make_kernel(deg, row) -> np.ndarray:
  """The package's kernel for one kernel_params row, zero-padded to 21 x 21."""
  type_id, size, sigma_x, sigma_y, theta, beta, omega_c = row
  type_id, size = int(type_id), int(size)
  isotropic = type_id in (0, 2, 4)
  if type_id in (0, 1):
    kernel = deg.bivariate_Gaussian(size, sigma_x, sigma_y, theta, isotropic=isotropic)
  elif type_id in (2, 3):
    kernel = deg.bivariate_generalized_Gaussian(size, sigma_x, sigma_y, theta, beta,
                                                isotropic=isotropic)
  elif type_id in (4, 5):
    kernel = deg.bivariate_plateau(size, sigma_x, sigma_y, theta, beta, isotropic=isotropic)
  else:
    kernel = deg.circular_lowpass_kernel(omega_c, size, pad_to=False)
  pad = (21 - size) // 2  # As RealESRGANDataset.__getitem__.
  return np.pad(kernel, ((pad, pad), (pad, pad)))


def random_kernel_rows(rng: np.random.RandomState, count: int):
  """Rows drawn from Real-ESRGAN's ranges, the draws in random_bivariate_*'s order.

  Sizes 7..21 odd, sigma [0.2, 3], theta [-pi, pi], beta [0.5, 4] (generalized) / [1, 2]
  (plateau: the package's `uniform(beta_range[0], 1)` branch then gives exactly 1), omega_c
  [pi/3, pi] below size 13 and [pi/5, pi] from 13 (RealESRGANDataset). Types cycle 0..6.

  Args:
    rng: the numpy random state.
    count: number of rows.

  Returns:
    A list of kernel_params rows.
  """
  rows = []
  for i in range(count):
    type_id = i % 7
    size = int(rng.choice([2 * v + 1 for v in range(3, 11)]))
    if type_id == 6:
      omega_c = rng.uniform(PI / 3 if size < 13 else PI / 5, PI)
      rows.append((6, size, 0, 0, 0, 0, omega_c))
      continue
    sigma_x = rng.uniform(0.2, 3)
    if type_id % 2:  # aniso variants
      sigma_y, theta = rng.uniform(0.2, 3), rng.uniform(-PI, PI)
    else:
      sigma_y, theta = sigma_x, 0
    beta = 0
    if type_id in (2, 3, 4, 5):  # random_bivariate_*: below or above 1 with probability 1/2.
      low, high = (0.5, 4) if type_id in (2, 3) else (1, 2)
      beta = rng.uniform(low, 1) if rng.uniform() < 0.5 else rng.uniform(1, high)
    rows.append((type_id, size, sigma_x, sigma_y, theta, beta, 0))
  return rows


def kernel_case(deg, out):
  rng = np.random.RandomState(KERNEL_SEED)
  rows = list(KERNEL_ROWS) + random_kernel_rows(rng, NUM_RANDOM_KERNELS)
  params = np.array(rows, dtype=np.float64)
  kernels = np.stack([make_kernel(deg, row) for row in rows]).astype(np.float64)
  assert set(params[:, 0].astype(int)) == set(range(7))
  assert set(params[:, 1].astype(int)) == set(range(7, 22, 2))
  np.testing.assert_allclose(kernels.sum((1, 2)), 1.0, rtol=1e-12)
  out["kernel_params"], out["kernels"] = params, kernels

  # The shared kernel of the filter2D case: the package's own multiplicative kernel noise
  # (random_bivariate_Gaussian draws sigma_x, sigma_y, rotation, then the noise from np.random).
  np.random.seed(KERNEL_SEED + 1)
  shared = deg.random_bivariate_Gaussian(21, (0.2, 3), (0.2, 3), (-PI, PI),
                                         noise_range=(0.75, 1.25), isotropic=False)
  assert np.abs(shared - shared[::-1, ::-1]).max() > 1e-3  # Not point-symmetric.
  return kernels, torch.FloatTensor(shared[None])


def filter_case(ipu, kernels, shared_kernel, out):
  image = crops("filter", 37, 45)
  x = to_torch(image)
  assert [int(out["kernel_params"][r, 0]) for r in FILTER_ROWS] == [1, 3, 6]
  per_sample = torch.FloatTensor(kernels[list(FILTER_ROWS)])
  out["filter_input"] = image
  out["filter_kernels"] = per_sample.numpy()
  out["filter_output"] = to_nhwc(ipu.filter2D(x, per_sample))
  out["filter_shared_kernel"] = shared_kernel.numpy()
  out["filter_shared_output"] = to_nhwc(ipu.filter2D(x, shared_kernel))


def usm_case(ipu, out):
  image = crops("usm", 64, 72)
  usm = ipu.USMSharp()
  out["usm_input"] = image
  out["usm_output"] = to_nhwc(usm(to_torch(image)))
  out["usm_kernel"] = usm.kernel[0].numpy().astype(np.float64)


def resize_case(out):
  image = crops("resize", 40, 52)
  x = to_torch(image)
  out["resize_input"] = image
  out["resize_scales"] = np.array(RESIZE_SCALES, dtype=np.float64)
  out["resize_sizes"] = np.array(RESIZE_SIZES, dtype=np.int64)
  for mode in RESIZE_MODES:
    for i, scale in enumerate(RESIZE_SCALES):  # First degradation: a scale factor.
      y = F.interpolate(x, scale_factor=scale, mode=mode)
      assert y.shape[2:] == (math.floor(40 * scale), math.floor(52 * scale))
      out[f"resize_scale_{mode}_{i}"] = to_nhwc(y)
    for j, size in enumerate(RESIZE_SIZES):  # Later ones: an output size.
      out[f"resize_size_{mode}_{j}"] = to_nhwc(F.interpolate(x, size=size, mode=mode))


def jpeg_case(diffjpeg, out):
  jpeger = diffjpeg.DiffJPEG(differentiable=False)

  def run(image, quality):
    x = torch.clamp(to_torch(image), 0, 1)
    if isinstance(quality, torch.Tensor):
      quality = quality.clone()  # DiffJPEG writes the factor into it.
    return to_nhwc(jpeger(x, quality=quality))

  image = crops("jpeg", 64, 80)
  quality = torch.tensor([30, 47.5, 50, 71.3, 95], dtype=torch.float32)
  out["jpeg_input"], out["jpeg_quality"] = image, quality.numpy()
  out["jpeg_output"] = run(image, quality)
  out["jpeg_scalar_output"] = run(image, 60.0)
  odd = crops("jpeg_odd", 50, 70)
  odd_quality = torch.tensor([40, 85], dtype=torch.float32)
  out["jpeg_odd_input"], out["jpeg_odd_quality"] = odd, odd_quality.numpy()
  out["jpeg_odd_output"] = run(odd, odd_quality)


def gaussian_case(deg, out):
  image = crops("gauss", 24, 28)
  x = to_torch(image)
  sigma = torch.tensor([1.0, 15.5, 30.0])
  gray = torch.tensor([0., 1., 1.])
  torch.manual_seed(GAUSS_SEED)
  result = deg.add_gaussian_noise_pt(x, sigma.clone(), gray.clone(), clip=True, rounds=False)

  # Replay generate_gaussian_noise_pt's draws: a gray [h, w] field (drawn because some
  # gray_noise > 0), then the colour [b, c, h, w] field.
  b, c, h, w = x.shape
  torch.manual_seed(GAUSS_SEED)
  gray_draw = torch.randn(h, w, dtype=x.dtype)
  color_draw = torch.randn(b, c, h, w, dtype=x.dtype)
  s, g = sigma.view(b, 1, 1, 1), gray.view(b, 1, 1, 1)
  noise = (color_draw * s / 255.) * (1 - g) + (gray_draw * s / 255.).view(b, 1, h, w) * g
  np.testing.assert_array_equal(torch.clamp(x + noise, 0, 1).numpy(), result.numpy())

  out["gauss_input"], out["gauss_sigma"], out["gauss_gray"] = image, sigma.numpy(), gray.numpy()
  out["gauss_output"] = to_nhwc(result)
  out["gauss_gray_draw"] = gray_draw.numpy()
  out["gauss_color_draw"] = to_nhwc(color_draw)


def _levels(q: torch.Tensor) -> torch.Tensor:
  """Per-sample 2 ** ceil(log2(#unique values)), float32 [B] (as generate_poisson_noise_pt)."""
  counts = [len(torch.unique(q[i])) for i in range(q.shape[0])]
  return q.new_tensor([2**np.ceil(np.log2(n)) for n in counts])


def poisson_run(deg, x, scale, gray, seed, prefix, out):
  """Runs add_poisson_noise_pt on NCHW x, replays its draws, stores `{prefix}_*` keys."""
  torch.manual_seed(seed)
  result = deg.add_poisson_noise_pt(x, scale.clone(), clip=True, rounds=False,
                                    gray_noise=gray.clone())

  # Replay: gray part first (its levels from the UNROUNDED image's luma), then colour.
  b = x.shape[0]
  torch.manual_seed(seed)
  gray_q = torch.clamp((_rgb_to_grayscale(x) * 255.0).round(), 0, 255) / 255.
  gray_vals = _levels(gray_q)
  gray_counts = torch.poisson(gray_q * gray_vals.view(b, 1, 1, 1))
  color_q = torch.clamp((x * 255.0).round(), 0, 255) / 255.
  color_vals = _levels(color_q)
  color_counts = torch.poisson(color_q * color_vals.view(b, 1, 1, 1))
  # Recompute the output from the counts with the package's formula.
  g, s = gray.view(b, 1, 1, 1), scale.view(b, 1, 1, 1)
  noise_gray = (gray_counts / gray_vals.view(b, 1, 1, 1) - gray_q).expand(x.shape)
  noise = color_counts / color_vals.view(b, 1, 1, 1) - color_q
  noise = (noise * (1 - g) + noise_gray * g) * s
  np.testing.assert_array_equal(torch.clamp(x + noise, 0, 1).numpy(), result.numpy())

  out[f"{prefix}_output"] = to_nhwc(result)
  out[f"{prefix}_gray_counts"] = to_nhwc(gray_counts)
  out[f"{prefix}_color_counts"] = to_nhwc(color_counts)
  out[f"{prefix}_gray_vals"] = gray_vals.numpy().astype(np.float32)
  out[f"{prefix}_color_vals"] = color_vals.numpy().astype(np.float32)


def poisson_case(deg, out):
  image = crops("poisson", 24, 28)
  scale = torch.tensor([0.05, 1.3, 3.0])
  gray = torch.tensor([1., 0., 1.])
  out["poisson_input"], out["poisson_scale"], out["poisson_gray"] = (image, scale.numpy(),
                                                                      gray.numpy())
  poisson_run(deg, to_torch(image), scale, gray, POISSON_SEED, "poisson", out)

  # Off the 8-bit levels: + 0.3/255 or + 0.7/255 in a checkerboard (0.7 rounds up a level).
  checker = (np.indices(image.shape[1:3]).sum(0) % 2)[None, :, :, None]
  offset = (0.3 + 0.4 * checker).astype(np.float32) / np.float32(255)
  shifted = np.clip(image.astype(np.float32) / np.float32(255) + offset, 0, 1).astype(np.float32)
  out["poisson_offset_input"] = shifted
  poisson_run(deg, to_torch(shifted), scale, gray, POISSON_SEED + 1, "poisson_offset", out)


def gray_case(out):
  out["gray_input"] = out["poisson_input"]
  out["gray_output"] = to_nhwc(_rgb_to_grayscale(to_torch(out["poisson_input"])))


def main():
  torch.set_num_threads(1)
  deg, ipu, diffjpeg = load_modules()
  out = {}
  with torch.no_grad():
    kernels, shared_kernel = kernel_case(deg, out)
    filter_case(ipu, kernels, shared_kernel, out)
    usm_case(ipu, out)
    resize_case(out)
    jpeg_case(diffjpeg, out)
    gaussian_case(deg, out)
    poisson_case(deg, out)
    gray_case(out)
  np.savez_compressed(OUT_PATH, **out)
  for key, value in out.items():
    print(f"{key:32s} {str(value.dtype):8s} {list(value.shape)}")
  types_ = out["kernel_params"][:, 0].astype(int)
  print("kernel rows:", {name: int((types_ == i).sum()) for i, name in enumerate(KERNEL_TYPES)})
  print("poisson vals (gray, color):", out["poisson_gray_vals"], out["poisson_color_vals"],
        "offset:", out["poisson_offset_gray_vals"], out["poisson_offset_color_vals"])
  print(f"Wrote {len(out)} arrays, {os.path.getsize(OUT_PATH) / 1024:.0f} KiB, to {OUT_PATH}")


if __name__ == "__main__":
  main()
