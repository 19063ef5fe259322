"""Foreign state dicts (PyTorch names and layouts) onto Linen variables.

Keys follow `layers.flax_param_path` ('body.0.rdb1.conv1.weight' -> params
body_0/rdb1/conv1/kernel); conv weights are transposed by `layers.torch_conv_weight_to_flax`,
linear weights by `.T`, 1-D weights (PReLU slopes) copied, other leaves (biases, position
tables, any `nn.Parameter` named as the Linen parameter) kept; BatchNorm `weight`/`bias` ->
params `scale`/`bias`, `running_mean`/`running_var` -> batch_stats `mean`/`var`
(`num_batches_tracked` dropped); LayerNorm `weight` -> `scale`; spectral norm (torch
`nn.utils.spectral_norm`) `weight_orig` -> params `kernel`, `weight_u`/`weight_v` -> batch_stats
`u`/`v` (v reordered by `discriminators.spectral_norm_v_to_flax`), so that eval mode computes
torch's sigma = u^T W v. A family whose names differ from its Linen module's renames its keys
first (`interop.families.<family>.to_jaxsr`).
"""

from typing import Any, Dict

import flax
import numpy as np

from jaxsr.models import discriminators
from jaxsr.models import layers

StateDict = Dict[str, np.ndarray]

# BatchNorm state-dict leaf -> (Linen collection, variable name).
_BATCH_NORM = {"weight": ("params", "scale"), "bias": ("params", "bias"),
               "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}
# Spectral-norm state-dict leaf -> (Linen collection, variable name).
_SPECTRAL_NORM = {"weight_orig": ("params", "kernel"), "weight_u": ("batch_stats", "u"),
                  "weight_v": ("batch_stats", "v")}


def _flax_layout(leaf: str, value: np.ndarray) -> np.ndarray:
  """A `weight`: conv `[out, in, kh, kw]` -> `[kh, kw, in, out]`, linear `[out, in]` ->
  `[in, out]`; 1-D weights and other leaves (biases, SwinIR's position tables) as they are."""
  if leaf != "weight":
    return value
  if value.ndim == 4:
    return layers.torch_conv_weight_to_flax(value)
  return value.T if value.ndim == 2 else value


def state_dict_to_variables(state_dict: StateDict, like: Dict[str, Any],
                            source: str = "The state dict") -> Dict[str, Any]:
  """Maps a BasicSR state dict onto Linen variables shaped like `like` (rules: module doc).

  Args:
    state_dict: flat name -> array (PyTorch layouts).
    like: the target's variables {'params': ..., ['batch_stats': ...]} (arrays or
      ShapeDtypeStructs).
    source: what the state dict is, for the error message.

  Returns:
    Variables with `like`'s structure, shapes and dtypes, as numpy arrays.

  Raises:
    ValueError: listing every missing key (target paths), unexpected key (state-dict names)
      and shape mismatch at once.
  """
  batch_norms = {k.rsplit(".", 1)[0] for k in state_dict if k.endswith(".running_mean")}
  target = flax.traverse_util.flatten_dict(like)
  converted, names = {}, {}
  for key, value in state_dict.items():
    module, _, leaf = key.rpartition(".")
    if leaf in _SPECTRAL_NORM:
      collection, name = _SPECTRAL_NORM[leaf]
      path = (collection, *layers.flax_param_path(key)[:-1], name)
      if leaf == "weight_orig":
        value = _flax_layout("weight", value)
      elif leaf == "weight_v" and f"{module}.weight_orig" in state_dict:
        value = discriminators.spectral_norm_v_to_flax(
            value, state_dict[f"{module}.weight_orig"].shape)
    elif module in batch_norms:
      if leaf == "num_batches_tracked":
        continue
      collection, name = _BATCH_NORM.get(leaf, ("params", leaf))
      path = (collection, *layers.flax_param_path(key)[:-1], name)
    else:
      path, value = ("params", *layers.flax_param_path(key)), _flax_layout(leaf, value)
      layer_norm_scale = (*path[:-1], "scale")  # A LayerNorm's weight.
      if leaf == "weight" and path not in target and layer_norm_scale in target:
        path = layer_norm_scale
    converted[path], names[path] = value, key
  missing = ["/".join(p) for p in target if p not in converted]
  unexpected = [names[p] for p in converted if p not in target]
  mismatched = [f"{names[p]}: {converted[p].shape} (as {'/'.join(p)}) vs {target[p].shape}"
                for p in converted if p in target and converted[p].shape != target[p].shape]
  if missing or unexpected or mismatched:
    problems = [f"{title} ({len(items)}): {', '.join(items)}" for title, items in (
        ("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched))
                if items]
    raise ValueError(f"{source} does not fit the model:\n  " + "\n  ".join(problems))
  return flax.traverse_util.unflatten_dict(
      {p: np.asarray(converted[p], dtype=t.dtype) for p, t in target.items()})
