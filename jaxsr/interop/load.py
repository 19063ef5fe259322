"""Foreign weight files (`.pth`, `.safetensors`) as Linen variables of a jaxsr model:
read the file, pick the state dict, detect or check the architecture, rename, map."""

import dataclasses
import os
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import models
from jaxsr.interop import torch_io
from jaxsr.interop import detect as detect_lib
from jaxsr.interop import safetensors_io
from jaxsr.interop import variables as variables_lib

AUTO = "auto"
BASICSR_PREFIX = "basicsr:"  # init_from=basicsr:<file>: foreign weights (any supported layout)


def load_state_dict(path: str, key: str = "") -> dict[str, np.ndarray]:
  """The flat state dict of a `.pth` ({'params': sd}, {'params_ema': sd}, {'state_dict': sd},
  or sd; `key` picks an entry, see `torch_io.select_params`) or `.safetensors` file. Keys of
  a DataParallel save ('module.' prefix) lose it."""
  if safetensors_io.is_safetensors(path):
    state_dict = safetensors_io.load(path)
  else:
    loaded = torch_io.load_state_dict(path)
    if not key and isinstance(loaded, dict) and "state_dict" in loaded and not any(
        k in loaded for k in ("params", "params_ema")):
      key = "state_dict"
    state_dict = torch_io.select_params(loaded, key)
  if state_dict and all(k.startswith("module.") for k in state_dict):
    state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
  return state_dict


def discriminator_arch(name: str) -> str:
  """The `--arch` whose weights fit jaxsr discriminator `name` (e.g. 'unet_sn' ->
  'unet_discriminator'); ValueError for a discriminator no foreign weights exist for."""
  for arch, registered in detect_lib.discriminator_archs().items():
    if registered == name:
      return arch
  raise ValueError(f"Discriminator '{name}' has no foreign counterpart to import weights from "
                   f"(those with one: {sorted(detect_lib.discriminator_archs().values())})")


def is_discriminator(arch: str) -> bool:
  return arch in detect_lib.discriminator_archs()


def create_module(arch: str, hparams: dict[str, Any]):
  """The unbound Linen module of `arch` with the rule table's kwargs."""
  if is_discriminator(arch):
    return models.create_discriminator(detect_lib.discriminator_archs()[arch], **hparams)
  return models.create_model(arch, **hparams)


def abstract_variables(arch: str, hparams: dict[str, Any]) -> dict[str, Any]:
  """ShapeDtypeStructs of the variables of `create_module(arch, hparams)` (no memory)."""
  module = create_module(arch, hparams)
  side = hparams.get("input_size", 16)  # 16: divisible by every model's input multiple.
  x = jax.ShapeDtypeStruct((1, side, side, hparams.get("num_in_ch", 3)), jnp.float32)
  return dict(jax.eval_shape(lambda key, x: module.init(key, x, train=False),
                             jax.random.key(0), x))


def describe(arch: str, hparams: dict[str, Any], state_dict: dict[str, np.ndarray]) -> str:
  """One line: the architecture, its layout when the family has several, its kwargs."""
  family = detect_lib.family_of(arch)
  layout = family.layout(state_dict) if hasattr(family, "layout") else None
  fields = ", ".join(f"{k}={v}" for k, v in hparams.items())
  return f"{arch}{f' ({layout} layout)' if layout else ''}: {fields}"


@dataclasses.dataclass
class Loaded:
  """A foreign weight file read as Linen variables of jaxsr's `arch` built with `hparams`;
  `summary`: one line saying what was found (`describe`)."""
  arch: str
  hparams: dict[str, Any]
  variables: dict[str, Any]
  summary: str


def load_variables(path: str, arch: str = AUTO, like: Optional[dict[str, Any]] = None,
                   key: str = "", **overrides) -> Loaded:
  """Reads a foreign weight file as Linen variables.

  Args:
    path: `.pth` or `.safetensors` file (see `load_state_dict`).
    arch: an architecture name (`detect.all_archs()`), or 'auto' to detect it.
    like: variables (arrays or ShapeDtypeStructs) to fit, e.g. those of a config's model; None
      for the model built from the hyper-parameters read off the file.
    key: the file's entry to read ('' = params_ema, else params, else state_dict, else all).
    **overrides: model fields that shapes cannot tell (e.g. scale, act_type, res_scale).

  Returns:
    `Loaded`: the arch, its model kwargs, the variables {'params', ['batch_stats']} as numpy
    arrays shaped like `like`, and a one-line summary.

  Raises:
    ValueError: unknown arch or layout, a state dict of another architecture or size (every
      missing, unexpected and mismatched key listed), or no readable state dict.
    KeyError: `key` names an entry the file does not have (the message lists them).
  """
  state_dict = load_state_dict(os.fspath(path), key)
  if arch == AUTO:
    arch = detect_lib.detect(state_dict)[0]
  hparams = detect_lib.read_hparams(arch, state_dict, **overrides)
  renamed = detect_lib.to_jaxsr(arch, state_dict, hparams)
  if like is None:
    like = abstract_variables(arch, hparams)
  variables = variables_lib.state_dict_to_variables(renamed, like, f"{path} ({arch})")
  return Loaded(arch, hparams, variables, describe(arch, hparams, state_dict))
