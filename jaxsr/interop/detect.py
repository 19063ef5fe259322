"""Which architecture a state dict is, and with which hyper-parameters: every family's rule
table (`families/<family>.py`) is asked; exactly one must claim it.

A rule table is a module with `ARCH` (the `--arch` name: a `jaxsr.models.MODELS` name, or with
`DISCRIMINATOR` a discriminator's) or `ARCHS` (several; its `detect` then returns 'arch' too),
`detect(state_dict) -> kwargs | None` (never raising on another family's state dict),
`to_jaxsr(state_dict, kwargs) -> state_dict` under the Linen module's names, and optionally
`read(state_dict, **overrides) -> kwargs` (the explicit `--arch` path, with flags for what
shapes cannot tell). Adding a family = its model file + its rule table.
"""

import importlib
import pkgutil
import types
from typing import Any

import numpy as np

from jaxsr.interop import families as families_package

StateDict = dict[str, np.ndarray]


def families() -> list[types.ModuleType]:
  """Every rule table in `families/`, by module name."""
  names = sorted(m.name for m in pkgutil.iter_modules(families_package.__path__))
  return [importlib.import_module(f"{families_package.__name__}.{name}") for name in names]


def archs_of(family: types.ModuleType) -> tuple[str, ...]:
  return tuple(getattr(family, "ARCHS", None) or (family.ARCH,))


def all_archs() -> tuple[str, ...]:
  """Every `--arch` name, generators first."""
  found = [(hasattr(f, "DISCRIMINATOR"), a) for f in families() for a in archs_of(f)]
  return tuple(a for _, a in sorted(found))


def discriminator_archs() -> dict[str, str]:
  """`--arch` name -> `jaxsr.models.DISCRIMINATORS` name, for discriminator weights."""
  return {f.ARCH: f.DISCRIMINATOR for f in families() if hasattr(f, "DISCRIMINATOR")}


def family_of(arch: str) -> types.ModuleType:
  for family in families():
    if arch in archs_of(family):
      return family
  raise ValueError(f"Unknown architecture {arch!r}; supported: {list(all_archs())} or 'auto'")


def _claim(family: types.ModuleType, state_dict: StateDict):
  """(arch, kwargs) if `family` claims `state_dict`, else None."""
  found = family.detect(state_dict)
  if found is None:
    return None
  found = dict(found)
  return found.pop("arch", None) or family.ARCH, found


def read_hparams(arch: str, state_dict: StateDict, **overrides) -> dict[str, Any]:
  """The model kwargs of `state_dict` read as `arch` (`overrides` win); ValueError naming the
  arch when it is not one."""
  family = family_of(arch)
  if hasattr(family, "read"):
    return family.read(state_dict, **overrides)
  claimed = _claim(family, state_dict)
  if claimed is None or claimed[0] != arch:
    raise ValueError(f"Not a {arch} state dict"
                     + (f" (it reads as {claimed[0]})" if claimed else "")
                     + f": {_sample(state_dict)}")
  return dict(claimed[1], **overrides)


def _sample(state_dict: StateDict, keys=None) -> str:
  keys = sorted(state_dict if keys is None else keys)
  return f"{len(keys)} keys, e.g. {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"


def detect(state_dict: StateDict) -> tuple[str, dict[str, Any]]:
  """(arch, model kwargs) of the one family that claims `state_dict`.

  Raises:
    ValueError: in one line, no family claims it (naming the keys not recognised) or several
      do (naming them).
  """
  claims = [c for f in families() if (c := _claim(f, state_dict)) is not None]
  if len(claims) == 1:
    return claims[0]
  if claims:
    raise ValueError(f"The state dict fits several architectures ({[c[0] for c in claims]}); "
                     "pass --arch=<one of them>")
  prefixes = sorted({k.split(".")[0] for k in state_dict})
  raise ValueError(f"Unknown layout: no supported architecture ({', '.join(all_archs())}) has "
                   f"these keys: top-level names {prefixes[:12]}"
                   f"{' ...' if len(prefixes) > 12 else ''}; {_sample(state_dict)}")


def to_jaxsr(arch: str, state_dict: StateDict, hparams: dict[str, Any]) -> StateDict:
  """`state_dict` under the names of jaxsr's `arch` module (the family's `to_jaxsr`)."""
  return family_of(arch).to_jaxsr(state_dict, hparams)
