"""Imports BasicSR / Real-ESRGAN weights (a `.pth` state dict) into a jaxsr workdir.

  python -m jaxsr.convert --from=basicsr --arch=rrdbnet --input=RealESRGAN_x4plus.pth \
      --workdir=/tmp/x4plus
  python -m jaxsr.main --mode=eval --config=/tmp/x4plus/config.py --workdir=/tmp/x4plus \
      --config.eval.datasets=folder:/data/Set5/HR
  python -m jaxsr.convert --arch=unet_discriminator --input=RealESRGAN_x4plus_netD.pth \
      --workdir=/tmp/x4plus_netD  # For a GAN: --config.init_d_from=/tmp/x4plus_netD

The file may hold BasicSR's {'params': sd}, {'params_ema': sd} (both: 'params_ema' is taken
unless --key says otherwise) or the bare state dict sd; it is read by `torch_io` (no torch, no
code from the file runs). Architecture hyper-parameters are read off the tensor shapes (see
`infer_hparams`); the few that shapes cannot tell have flags. The workdir gets:

* `checkpoints/0`: an orbax checkpoint whose `state` holds `step`, `params`, `ema_params` (the
  same weights) and `model_state` (a discriminator: `d_params`, `d_model_state`), so that
  `--mode=eval`, `evaluate.restore_eval_variables`, `checkpointing.restore_generator` and
  `--config.init_from=<workdir>` (a discriminator: `--config.init_d_from=<workdir>`) read it as
  a checkpoint of a training run;
* `config.json`: the full config (`config_base.base_config()`, or `gan_config()` for a
  discriminator, with model.*, scale and ema_decay=0 set);
* `config.py`: the same config as a config file for `python -m jaxsr.main --config=...`.

Mapping (`state_dict_to_variables`): keys follow `layers.flax_param_path`; conv weights are
transposed by `layers.torch_conv_weight_to_flax`, linear weights by `.T`, 1-D weights (PReLU
slopes) copied, other leaves (biases, SwinIR's position tables) kept; BatchNorm `weight`/`bias`
-> params `scale`/`bias`, `running_mean`/`running_var` -> batch_stats `mean`/`var`
(`num_batches_tracked` dropped); LayerNorm `weight` -> `scale`; spectral norm (torch
`nn.utils.spectral_norm`) `weight_orig` -> params `kernel`, `weight_u`/`weight_v` -> batch_stats
`u`/`v` (v reordered by `discriminators.spectral_norm_v_to_flax`), so that eval mode computes
torch's sigma = u^T W v. SwinIR's buffers are not variables: `relative_position_index` is
checked against jaxsr's, `attn_mask` dropped (recomputed per input size). Training can also
start from such files directly: `--config.init_from=basicsr:<G.pth>` and, for a GAN,
`--config.init_d_from=basicsr:<D.pth>` (see `train.load_init_variables`).
"""

import math
import os
from typing import Any, Dict, Optional, Tuple

from absl import app
from absl import flags
from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxsr import checkpointing
from jaxsr import cli
from jaxsr import config_base
from jaxsr.basicsr_hparams import ARCHS, DISCRIMINATOR_ARCHS, infer_hparams
from jaxsr import models
from jaxsr import state as state_lib
from jaxsr import torch_io
from jaxsr.models import discriminators
from jaxsr.models import layers
from jaxsr.models import srvgg
from jaxsr.models import swinir

BASICSR_PREFIX = "basicsr:"  # init_from=basicsr:<file.pth>

StateDict = Dict[str, np.ndarray]

# BatchNorm state-dict leaf -> (Linen collection, variable name).
_BATCH_NORM = {"weight": ("params", "scale"), "bias": ("params", "bias"),
               "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}
# Spectral-norm state-dict leaf -> (Linen collection, variable name).
_SPECTRAL_NORM = {"weight_orig": ("params", "kernel"), "weight_u": ("batch_stats", "u"),
                  "weight_v": ("batch_stats", "v")}


# ---------------------------------------------------------------------------------------------
# Weights.


def _flax_layout(leaf: str, value: np.ndarray) -> np.ndarray:
  """A `weight`: conv `[out, in, kh, kw]` -> `[kh, kw, in, out]`, linear `[out, in]` ->
  `[in, out]`; 1-D weights and other leaves (biases, SwinIR's position tables) as they are."""
  if leaf != "weight":
    return value
  if value.ndim == 4:
    return layers.torch_conv_weight_to_flax(value)
  return value.T if value.ndim == 2 else value


def _drop_swinir_buffers(state_dict: StateDict) -> StateDict:
  """SwinIR's state dict without its buffers: `relative_position_index` (checked against
  `swinir.relative_position_index`, which jaxsr computes) and `attn_mask` (recomputed for each
  input size)."""
  kept = {}
  for key, value in state_dict.items():
    leaf = key.rpartition(".")[2]
    if leaf == "relative_position_index":
      window = math.isqrt(value.shape[0])
      if not np.array_equal(value, swinir.relative_position_index(window)):
        raise ValueError(f"{key} is not SwinIR's relative position index of a {window}x{window}"
                         " window; the file holds another architecture")
    elif leaf != "attn_mask":
      kept[key] = value
  return kept


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


def discriminator_arch(name: str) -> str:
  """The `--arch` whose BasicSR weights fit jaxsr discriminator `name` (e.g. 'unet_sn' ->
  'unet_discriminator'); ValueError for a discriminator BasicSR has no weights of."""
  for arch, registered in DISCRIMINATOR_ARCHS.items():
    if registered == name:
      return arch
  raise ValueError(f"Discriminator '{name}' has no BasicSR counterpart to import weights from "
                   f"(those with one: {sorted(DISCRIMINATOR_ARCHS.values())})")


def create_module(arch: str, hparams: Dict[str, Any]):
  """The unbound Linen module of `arch` with `infer_hparams`' kwargs."""
  if arch in DISCRIMINATOR_ARCHS:
    return models.create_discriminator(DISCRIMINATOR_ARCHS[arch], **hparams)
  return models.create_model(arch, **hparams)


def abstract_variables(arch: str, hparams: Dict[str, Any]) -> Dict[str, Any]:
  """ShapeDtypeStructs of the variables of `create_module(arch, hparams)` (no memory)."""
  module = create_module(arch, hparams)
  side = hparams.get("input_size", 8)  # 8: divisible by rrdbnet x1's pixel-unshuffle.
  x = jax.ShapeDtypeStruct((1, side, side, hparams.get("num_in_ch", 3)), jnp.float32)
  return dict(jax.eval_shape(lambda key, x: module.init(key, x, train=False),
                             jax.random.key(0), x))


def load_basicsr_variables(path: str, arch: str, like: Optional[Dict[str, Any]] = None,
                           key: str = "", **overrides) -> Tuple[Dict[str, Any], Dict[str, Any]]:
  """Reads a BasicSR `.pth` file as Linen variables of `arch`.

  Args:
    path: `.pth` file: {'params': sd}, {'params_ema': sd}, both, or the bare sd.
    arch: one of `ARCHS`.
    like: variables (arrays or ShapeDtypeStructs) to fit, e.g. those of a config's model; None
      for the model built from the hyper-parameters read off the file.
    key: 'params_ema' | 'params' to force that entry; '' for 'params_ema', else 'params', else
      the bare state dict.
    **overrides: model fields for `infer_hparams` (e.g. scale, act_type, res_scale).

  Returns:
    (model kwargs as `infer_hparams`, variables {'params', ['batch_stats']} as float numpy
    arrays shaped like `like`).

  Raises:
    ValueError: unknown arch, a state dict of another architecture or size (every missing,
      unexpected and mismatched key listed), or no readable state dict.
    KeyError: `key` names an entry the file does not have (the message lists them).
  """
  state_dict = torch_io.select_params(torch_io.load_state_dict(path), key)
  if arch == "swinir":
    state_dict = _drop_swinir_buffers(state_dict)
  hparams = infer_hparams(arch, state_dict, **overrides)
  if like is None:
    like = abstract_variables(arch, hparams)
  return hparams, state_dict_to_variables(state_dict, like, f"{path} ({arch})")


# ---------------------------------------------------------------------------------------------
# Workdir.


def make_config(arch: str, hparams: Dict[str, Any]) -> ml_collections.ConfigDict:
  """The config whose model (or discriminator) is `arch` with `hparams`: `base_config()` with
  model.*, scale and ema_decay=0 (eval reads `params`); for a discriminator `gan_config()`
  with discriminator.* and data.gt_size = its input size."""
  if arch in DISCRIMINATOR_ARCHS:
    config = config_base.gan_config()
    config.discriminator.name = DISCRIMINATOR_ARCHS[arch]
    config.discriminator.update(hparams)
    config.data.gt_size = hparams.get("input_size", config.data.gt_size)
  else:
    config = config_base.base_config()
    config.model.name = arch
    config.model.update({k: v for k, v in hparams.items() if k != "scale"})
    config.scale = hparams["scale"]
  config.ema_decay = 0.0
  config_base.validate(config)
  return config


def _changed_fields(config: ml_collections.ConfigDict, base: ml_collections.ConfigDict,
                    prefix: str = "") -> list:
  """[(dotted name, value)] of the leaves of `config` that `base` lacks or holds otherwise."""
  changed = []
  for name, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      changed += _changed_fields(value, base[name], f"{prefix}{name}.")
    elif name not in base or base[name] != value:
      changed.append((prefix + name, value))
  return changed


def config_source(config: ml_collections.ConfigDict, doc: str) -> str:
  """A `configs/*.py`-style file (`get_config()`) that rebuilds `config` from `base_config()`
  or `gan_config()`, for `python -m jaxsr.main --config=<file>`."""
  gan = config_base.is_gan(config)
  base = config_base.gan_config() if gan else config_base.base_config()
  lines = [f'"""{doc}"""', "", "from jaxsr import config_base", "", "",
           "def get_config():",
           f"  c = config_base.{'gan_config' if gan else 'base_config'}()"]
  lines += [f"  c.{name} = {value!r}" for name, value in _changed_fields(config, base)]
  return "\n".join(lines + ["  return c", ""])


def write_workdir(workdir: str, arch: str, hparams: Dict[str, Any],
                  variables: Dict[str, Any], source: str = "") -> ml_collections.ConfigDict:
  """Writes `<workdir>/checkpoints/0`, `config.json` and `config.py` (see the module doc).

  Args:
    workdir: output directory; must not hold checkpoints yet.
    arch: one of `ARCHS`.
    hparams: the model kwargs (`infer_hparams`).
    variables: Linen variables of that model (`load_basicsr_variables`).
    source: where the weights came from (for config.py's docstring).

  Returns:
    The config written.

  Raises:
    ValueError: the workdir already holds a checkpoint.
  """
  config = make_config(arch, hparams)
  manager = checkpointing.create_manager(workdir, keep=1)
  if manager.all_steps():
    raise ValueError(f"{manager.directory} already holds checkpoints {manager.all_steps()}; "
                     "convert into an empty workdir")
  params, model_state = state_lib.split_variables(variables)
  if arch in DISCRIMINATOR_ARCHS:
    state = {"step": np.int32(0), "d_params": params, "d_model_state": model_state}
  else:
    state = {"step": np.int32(0), "params": params, "ema_params": params,
             "model_state": model_state}
  checkpointing.save(manager, 0, state, {"next_step": 0})
  manager.close()
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  if arch in DISCRIMINATOR_ARCHS:
    usage = ("A GAN config with these discriminator.* starts from it with\n"
             "  --config.init_d_from=<this folder>\n")
  else:
    usage = ("The checkpoint is in this folder:\n  python -m jaxsr.main --mode=eval "
             "--config=<this file> --workdir=<this folder> \\\n      "
             "--config.eval.datasets=folder:<HR images>\n")
  with open(os.path.join(workdir, "config.py"), "w") as f:
    f.write(config_source(config, f"{arch} weights converted by `python -m jaxsr.convert` "
                                  f"from\n{source or 'BasicSR'}\n\n{usage}"))
  return config


def convert(path: str, arch: str, workdir: str, key: str = "",
            **overrides) -> ml_collections.ConfigDict:
  """`load_basicsr_variables(path, arch, key=key, **overrides)` then `write_workdir`; returns
  the config written."""
  hparams, variables = load_basicsr_variables(path, arch, key=key, **overrides)
  config = write_workdir(workdir, arch, hparams, variables, os.path.abspath(path))
  logging.info("Converted %s (%s, %s) into %s", path, arch, hparams, workdir)
  return config


# ---------------------------------------------------------------------------------------------
# Command line.


def _define_flags() -> None:
  """Flags of `python -m jaxsr.convert` (defined only when run as a program)."""
  flags.DEFINE_enum("from", "basicsr", ["basicsr"], "Format of the input weights.")
  flags.DEFINE_enum("arch", None, list(ARCHS), "Architecture of the weights.")
  flags.DEFINE_string("input", None, "The .pth file (BasicSR / Real-ESRGAN state dict).")
  flags.DEFINE_string("workdir", None, "Output directory (checkpoint, config.json, config.py).")
  flags.DEFINE_enum("key", "", ["", "params_ema", "params"],
                    "Entry of the file to read; '' = params_ema, else params, else the bare "
                    "state dict.")
  flags.DEFINE_integer("scale", None, "Upscale factor, only where the shapes cannot tell "
                       "(rrdbnet / srvgg with num_in_ch != num_out_ch).")
  flags.DEFINE_enum("act_type", None, list(srvgg.ACT_TYPES),
                    "srvgg activation; default: prelu if PReLU weights are present, else relu.")
  flags.DEFINE_float("res_scale", None, "edsr residual scale (not in the weights; default 1, "
                     "the full EDSR uses 0.1).")
  flags.DEFINE_boolean("skip_connection", None, "unet_discriminator U-Net skips (not in the "
                       "weights; default True, as Real-ESRGAN).")
  flags.mark_flags_as_required(["arch", "input", "workdir"])


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  checkpointing.quiet_orbax_info()
  values = flags.FLAGS
  overrides = {name: values[name].value
               for name in ("scale", "act_type", "res_scale", "skip_connection")
               if values[name].value is not None}
  convert(values.input, values.arch, values.workdir, key=values.key, **overrides)


if __name__ == "__main__":
  _define_flags()
  cli.run(main)
