"""A pytest plugin that fails a test whose float comparison assumes last-place agreement.

Results of two programs (jit vs eager, JAX vs ONNX Runtime, a fused vs an unfused kernel) agree
bit for bit on one CPU and differ in the last place on another: XLA:CPU generates other code for
AVX2 and AVX-512, oneDNN / XNNPACK / ONNX Runtime pick other kernels. Such a test passes on the
machine it was written on and fails on the next. This plugin catches it on any machine, from the
values and the tolerance alone:

- `np.testing.assert_array_equal` / `assert_equal` of floating-point arrays
  (values that are not all integers) fail, unless the test is marked
  `@pytest.mark.exact("<why bit-exactness is the promise>")` — the same compiled program on the
  same machine (resume, determinism), data movement only (crops, flips, round trips).
- `np.testing.assert_allclose` fails when its tolerance admits fewer than `MIN_ULPS` units in the
  last place of some expected value, in the lowest precision of the two arrays (e.g. `atol=1e-5,
  rtol=0` against values of magnitude 38 in float32, where 4 ulps are 1.8e-5), unless marked
  `exact`. Values compared after a cast to float64 are judged as float64: cast after comparing.

`tests/utils.assert_trees_equal` (checkpoints, resume) compares with the unpatched functions: its
callers promise bit-exactness by using it.
"""

import numpy as np
import pytest

MIN_ULPS = 4
ORIGINAL = {"assert_array_equal": np.testing.assert_array_equal,
            "assert_equal": np.testing.assert_equal,
            "assert_allclose": np.testing.assert_allclose}
_ADVICE = ("compare with tests.utils.assert_close(actual, desired, dtype, ops) (a tolerance from "
           "the dtype and the magnitude), or, where bit-exactness is the promise (the same "
           "program on the same machine), mark the test @pytest.mark.exact('<why>')")


def _float_dtype(*arrays):
  """The lowest-precision floating dtype among `arrays` (ml_dtypes' bfloat16 included), or
  None when none is floating."""
  dtypes = []
  for array in arrays:
    dtype = np.asarray(array).dtype
    if np.issubdtype(dtype, np.floating) or dtype.kind == "V" or "float" in dtype.name:
      dtypes.append(dtype)
  if not dtypes:
    return None
  return min(dtypes, key=lambda d: np.finfo(d).nmant)


def _non_integer_floats(*arrays) -> bool:
  """Whether any of `arrays` is floating with a finite value that is not an integer."""
  for array in arrays:
    try:
      array = np.asarray(array)
    except (TypeError, ValueError):
      continue
    if _float_dtype(array) is None or array.dtype == object:
      continue
    values = array.astype(np.float64)
    values = values[np.isfinite(values)]
    if values.size and np.any(values != np.round(values)):
      return True
  return False


def _violation(what: str, dtype) -> str:
  return f"numeric policy: {what} of {np.dtype(dtype).name} values; {_ADVICE}."


def _exact(name):
  original = ORIGINAL[name]

  def checked(actual, desired, *args, **kwargs):
    if _non_integer_floats(actual, desired):
      pytest.fail(_violation(f"exact comparison ({name})", _float_dtype(actual, desired)),
                  pytrace=False)
    return original(actual, desired, *args, **kwargs)
  return checked


def _checked_allclose(actual, desired, rtol=1e-7, atol=0, *args, **kwargs):
  dtype = _float_dtype(actual, desired)
  if dtype is not None and np.asarray(desired).dtype != object:
    magnitude = np.abs(np.asarray(desired, np.float64))
    magnitude = magnitude[np.isfinite(magnitude)]
    needed = MIN_ULPS * float(np.finfo(dtype).eps) * magnitude
    if magnitude.size and np.any(atol + rtol * magnitude < needed):
      worst = float(magnitude.max())
      pytest.fail(_violation(
          f"assert_allclose(rtol={rtol:g}, atol={atol:g}) admitting fewer than {MIN_ULPS} ulps "
          f"(values up to {worst:.4g}: {MIN_ULPS} ulps are {needed.max():.2g})", dtype),
          pytrace=False)
  return ORIGINAL["assert_allclose"](actual, desired, rtol, atol, *args, **kwargs)


def register_marker(config):
  """Called from conftest's `pytest_configure`."""
  config.addinivalue_line(
      "markers", "exact(reason): bit-exactness is this test's promise (the same program on the "
      "same machine: resume, determinism; data movement only); exempts it from the numeric "
      "policy (tests/numeric_policy.py)")


@pytest.fixture(autouse=True)
def numeric_policy(request, monkeypatch):
  """Patches numpy's comparisons for the test unless it is marked `exact` (with a reason)."""
  marker = request.node.get_closest_marker("exact")
  if marker is not None:
    if not (marker.args and isinstance(marker.args[0], str) and marker.args[0].strip()):
      pytest.fail("@pytest.mark.exact needs the reason bit-exactness is promised here",
                  pytrace=False)
    return
  for name in ("assert_array_equal", "assert_equal"):
    monkeypatch.setattr(np.testing, name, _exact(name))
  monkeypatch.setattr(np.testing, "assert_allclose", _checked_allclose)
