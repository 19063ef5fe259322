"""Blur kernels of Real-ESRGAN (`basicsr/data/degradations.py`), built and drawn in JAX.

Every kernel lives on a fixed `MAX_KERNEL_SIZE` (21) grid: a kernel of odd size k is computed on
its centred k x k support and zero elsewhere, exactly `np.pad(kernel_k, (21 - k) // 2)` as
`RealESRGANDataset` pads it. Size, type and parameters may be traced values, so one compiled
function draws a different kernel for every sample of a batch.

Types (`KERNEL_TYPES` order, then sinc): isotropic / anisotropic Gaussian, generalized Gaussian
(`exp(-0.5 q^beta)`), plateau (`1 / (1 + q^beta)`), q the quadratic form of the rotated
covariance diag(sigma_x^2, sigma_y^2) at the grid point; and the circular low-pass (sinc)
kernel `omega J1(omega r) / (2 pi r)` with cutoff omega.
"""

import math
from typing import Dict, Sequence

import jax.numpy as jnp
import numpy as np
import scipy.special

from jaxsr.degradations.config import KERNEL_TYPES, MAX_KERNEL_SIZE

SINC = len(KERNEL_TYPES)  # Kernel type id of the circular low-pass kernel.
_CENTER = MAX_KERNEL_SIZE // 2

KernelParams = Dict[str, jnp.ndarray]  # Scalars: kernel_type, kernel_size, sigma_x, ...


_J1_STEP = 1.0 / 32  # Table spacing of `bessel_j1` (cubic Hermite error < 1e-9).
_J1_MAX = 48.0  # > pi * 10 * sqrt(2), the largest argument a 21 x 21 sinc kernel needs.


def _j1_table():
  """(J1, J1') on [0, _J1_MAX] every _J1_STEP, computed in float64 by SciPy on the host."""
  x = np.arange(0.0, _J1_MAX + 2 * _J1_STEP, _J1_STEP)
  j1 = scipy.special.j1(x)
  derivative = scipy.special.j0(x) - np.divide(j1, x, out=np.full_like(x, 0.5), where=x > 0)
  return j1.astype(np.float32), derivative.astype(np.float32)


_J1_VALUES, _J1_SLOPES = _j1_table()


def bessel_j1(x: jnp.ndarray) -> jnp.ndarray:
  """Bessel function of the first kind, order 1, for |x| <= 48: cubic Hermite interpolation of
  a float64 table (absolute error ~1e-7 in float32, where closed-form float32 approximations
  lose ~2e-6 to cancellation near x = 8)."""
  ax = jnp.minimum(jnp.abs(x), _J1_MAX) / _J1_STEP
  i = jnp.floor(ax).astype(jnp.int32)
  t = ax - i
  values, slopes = jnp.asarray(_J1_VALUES), jnp.asarray(_J1_SLOPES) * _J1_STEP
  y0, y1, m0, m1 = values[i], values[i + 1], slopes[i], slopes[i + 1]
  t2, t3 = t * t, t * t * t
  y = ((2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + t) * m0 + (-2 * t3 + 3 * t2) * y1
       + (t3 - t2) * m1)
  return jnp.sign(x) * y


def _grid():
  """(column x, row y) coordinates of the 21 x 21 grid, centred: basicsr's `mesh_grid`."""
  ax = jnp.arange(MAX_KERNEL_SIZE, dtype=jnp.float32) - _CENTER
  return ax[None, :], ax[:, None]


def support_mask(kernel_size: jnp.ndarray) -> jnp.ndarray:
  """[21, 21] float32: 1 on the centred `kernel_size` x `kernel_size` support (odd size)."""
  xx, yy = _grid()
  half = (kernel_size // 2).astype(jnp.float32)
  return ((jnp.abs(xx) <= half) & (jnp.abs(yy) <= half)).astype(jnp.float32)


def _normalized(kernel: jnp.ndarray, kernel_size: jnp.ndarray) -> jnp.ndarray:
  kernel = kernel * support_mask(kernel_size)
  return kernel / jnp.sum(kernel)


def _quadratic_form(sigma_x, sigma_y, theta) -> jnp.ndarray:
  """q(x, y) = [x y] Sigma^-1 [x y]^T, Sigma = R diag(sx^2, sy^2) R^T, on the 21 x 21 grid."""
  xx, yy = _grid()
  cos, sin = jnp.cos(theta), jnp.sin(theta)
  # Rotate into the principal axes: u = R^T [x, y].
  u = cos * xx + sin * yy
  v = -sin * xx + cos * yy
  return u * u / (sigma_x * sigma_x) + v * v / (sigma_y * sigma_y)


def gaussian_kernel(kernel_size, sigma_x, sigma_y, theta) -> jnp.ndarray:
  """[21, 21] normalised bivariate Gaussian (isotropic when sigma_y = sigma_x, theta = 0)."""
  return _normalized(jnp.exp(-0.5 * _quadratic_form(sigma_x, sigma_y, theta)), kernel_size)


def generalized_gaussian_kernel(kernel_size, sigma_x, sigma_y, theta, beta) -> jnp.ndarray:
  """[21, 21] normalised generalized Gaussian exp(-0.5 q^beta)."""
  q = _quadratic_form(sigma_x, sigma_y, theta)
  return _normalized(jnp.exp(-0.5 * jnp.power(q, beta)), kernel_size)


def plateau_kernel(kernel_size, sigma_x, sigma_y, theta, beta) -> jnp.ndarray:
  """[21, 21] normalised plateau kernel 1 / (1 + q^beta)."""
  q = _quadratic_form(sigma_x, sigma_y, theta)
  return _normalized(1.0 / (jnp.power(q, beta) + 1.0), kernel_size)


def sinc_kernel(kernel_size, omega_c) -> jnp.ndarray:
  """[21, 21] normalised circular low-pass kernel with cutoff `omega_c` (radians, <= pi)."""
  xx, yy = _grid()
  r = jnp.sqrt(xx * xx + yy * yy)
  safe_r = jnp.where(r == 0, 1.0, r)
  kernel = omega_c * bessel_j1(omega_c * safe_r) / (2 * math.pi * safe_r)
  kernel = jnp.where(r == 0, omega_c * omega_c / (4 * math.pi), kernel)
  return _normalized(kernel, kernel_size)


def pulse_kernel() -> jnp.ndarray:
  """[21, 21] identity kernel (Real-ESRGAN's `pulse_tensor`)."""
  return jnp.zeros((MAX_KERNEL_SIZE,) * 2, jnp.float32).at[_CENTER, _CENTER].set(1.0)


def make_kernel(params: KernelParams) -> jnp.ndarray:
  """The [21, 21] kernel of `params` (see `sample_kernel_params`); any type id, traced."""
  size, sx, sy = params["kernel_size"], params["sigma_x"], params["sigma_y"]
  theta, beta = params["theta"], params["beta"]
  candidates = jnp.stack([
      gaussian_kernel(size, sx, sy, theta),  # iso (sy = sx, theta = 0) and aniso.
      generalized_gaussian_kernel(size, sx, sy, theta, beta),
      plateau_kernel(size, sx, sy, theta, beta),
      sinc_kernel(size, params["omega_c"]),
  ])
  family = jnp.array([0, 0, 1, 1, 2, 2, 3])[params["kernel_type"]]
  return candidates[family]


def uniform_in(u: jnp.ndarray, low: float, high: float) -> jnp.ndarray:
  """Maps u ~ U[0, 1) to U[low, high)."""
  return low + (high - low) * u


def choice_from_uniform(u: jnp.ndarray, values, probs=None) -> jnp.ndarray:
  """values[i] with probability probs[i] (uniform if None), by inverting the CDF at u ~ U[0,1)."""
  values = jnp.asarray(values)
  n = values.shape[0]
  probs = jnp.full((n,), 1.0 / n) if probs is None else jnp.asarray(probs, jnp.float32)
  cdf = jnp.cumsum(probs)
  index = jnp.minimum(jnp.sum(u * cdf[-1] >= cdf), n - 1)
  return values[index]


def _beta(u: jnp.ndarray, beta_range) -> jnp.ndarray:
  """basicsr's draw from u [3]: U(low, 1) or U(1, high) with probability 1/2 each."""
  return jnp.where(u[0] < 0.5, uniform_in(u[1], beta_range[0], 1.0),
                   uniform_in(u[2], 1.0, beta_range[1]))


NUM_KERNEL_UNIFORMS = 10  # Uniforms `sample_kernel_params` consumes.


def sample_kernel_params(u: jnp.ndarray, kernel_sizes: Sequence[int], kernel_list: Sequence[str],
                         kernel_prob: Sequence[float], sinc_prob: float,
                         blur_sigma: Sequence[float], betag_range: Sequence[float],
                         betap_range: Sequence[float]) -> KernelParams:
  """One kernel's parameters as `RealESRGANDataset` draws them (size uniform over
  kernel_sizes; sinc with probability sinc_prob, cutoff U(pi/3, pi) for sizes < 13 else
  U(pi/5, pi); else a type of kernel_list by kernel_prob, sigma_x ~ U(blur_sigma),
  anisotropic types sigma_y ~ U(blur_sigma), theta ~ U(-pi, pi), beta as `_beta`).

  Args:
    u: [NUM_KERNEL_UNIFORMS] independent U[0, 1) draws (one PRNG call makes them all: fewer
      random-bit programs to compile than a key per parameter).

  Returns:
    float32 / int32 scalars: kernel_type (index into KERNEL_TYPES, SINC for sinc),
    kernel_size, sigma_x, sigma_y, theta, beta (1 where unused), omega_c (0 unless sinc).
  """
  size = choice_from_uniform(u[0], jnp.asarray(kernel_sizes, jnp.int32))
  type_ids = jnp.asarray([KERNEL_TYPES.index(k) for k in kernel_list], jnp.int32)
  kernel_type = choice_from_uniform(u[1], type_ids, kernel_prob)
  is_sinc = u[2] < sinc_prob
  omega_c = uniform_in(u[3], jnp.where(size < 13, math.pi / 3, math.pi / 5), math.pi)
  sigma_x = uniform_in(u[4], *blur_sigma)
  anisotropic = (kernel_type % 2) == 1  # aniso, generalized_aniso, plateau_aniso.
  sigma_y = jnp.where(anisotropic, uniform_in(u[5], *blur_sigma), sigma_x)
  theta = jnp.where(anisotropic, uniform_in(u[6], -math.pi, math.pi), 0.0)
  beta_range = jnp.where(kernel_type >= 4, jnp.asarray(betap_range, jnp.float32),
                         jnp.asarray(betag_range, jnp.float32))
  beta = jnp.where(kernel_type >= 2, _beta(u[7:10], beta_range), 1.0)
  return {
      "kernel_type": jnp.where(is_sinc, SINC, kernel_type),
      "kernel_size": size,
      "sigma_x": jnp.where(is_sinc, 0.0, sigma_x),
      "sigma_y": jnp.where(is_sinc, 0.0, sigma_y),
      "theta": jnp.where(is_sinc, 0.0, theta),
      "beta": jnp.where(is_sinc, 1.0, beta),
      "omega_c": jnp.where(is_sinc, omega_c, 0.0),
  }


NUM_FINAL_SINC_UNIFORMS = 3


def sample_final_sinc_params(u: jnp.ndarray, kernel_sizes: Sequence[int],
                             final_sinc_prob: float) -> KernelParams:
  """The final sinc filter's parameters from u [3]: with probability final_sinc_prob a sinc
  kernel of a size drawn from kernel_sizes and cutoff U(pi/3, pi), else the pulse (size 1)."""
  use = u[0] < final_sinc_prob
  size = choice_from_uniform(u[1], jnp.asarray(kernel_sizes, jnp.int32))
  zero = jnp.zeros((), jnp.float32)
  return {"kernel_type": jnp.int32(SINC), "kernel_size": jnp.where(use, size, 1),
          "sigma_x": zero, "sigma_y": zero, "theta": zero, "beta": zero + 1.0,
          "omega_c": jnp.where(use, uniform_in(u[2], math.pi / 3, math.pi), 0.0)}


def make_final_sinc_kernel(params: KernelParams) -> jnp.ndarray:
  """[21, 21] sinc kernel of `sample_final_sinc_params`, or the pulse for kernel_size 1."""
  safe_omega = jnp.where(params["omega_c"] > 0, params["omega_c"], math.pi)
  return jnp.where(params["kernel_size"] > 1,
                   sinc_kernel(params["kernel_size"], safe_omega), pulse_kernel())
