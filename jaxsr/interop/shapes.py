"""Reading hyper-parameters off a state dict's tensor shapes, with errors that name the
architecture and the key (shared by the rule tables in `families/`)."""

import math
import re

import numpy as np

StateDict = dict[str, np.ndarray]


class ShapeReader:
  """Shapes and block counts of a state dict read as `arch`."""

  def __init__(self, arch: str, state_dict: StateDict):
    self.arch, self.state_dict = arch, state_dict

  def has(self, *keys: str) -> bool:
    return all(k in self.state_dict for k in keys)

  def shape(self, key: str) -> tuple:
    if key not in self.state_dict:
      keys = sorted(self.state_dict)
      raise ValueError(f"Not a {self.arch} state dict: no '{key}' (it has {len(keys)} keys: "
                       f"{keys[:6]}{' ...' if len(keys) > 6 else ''})")
    return self.state_dict[key].shape

  def indices(self, pattern: str) -> list:
    """Sorted integers i of the keys matching `pattern` (a regex with one `(\\d+)` group)."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in self.state_dict if (m := regex.fullmatch(k))})

  def count(self, pattern: str) -> int:
    """Number of blocks `pattern` matches; ValueError unless they are numbered 0..n-1."""
    found = self.indices(pattern)
    if found != list(range(len(found))):
      raise ValueError(f"Not a {self.arch} state dict: blocks {pattern} are numbered {found}")
    return len(found)

  def ratio_root(self, channels: int, per: int, what: str) -> int:
    """The integer r with channels == per * r * r (ValueError naming `what` otherwise)."""
    root = math.isqrt(channels // per) if per and channels % per == 0 else 0
    if root < 1 or per * root * root != channels:
      raise ValueError(f"{self.arch}: cannot read the scale from {what} ({channels} channels "
                       f"for {per} per unit); pass it (--scale)")
    return root
