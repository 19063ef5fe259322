"""Imports foreign weights (`.pth` / `.safetensors` of BasicSR, Real-ESRGAN, the official
repositories, the old ESRGAN layout) into a jaxsr workdir.

  python -m jaxsr.convert --input=RealESRGAN_x4plus.pth --workdir=/tmp/x4plus   # --arch=auto
  python -m jaxsr.main --mode=eval --config=/tmp/x4plus/config.py --workdir=/tmp/x4plus \
      --config.eval.datasets=folder:/data/Set5/HR
  python -m jaxsr.convert --arch=unet_discriminator --input=RealESRGAN_x4plus_netD.pth \
      --workdir=/tmp/x4plus_netD  # For a GAN: --config.init_d_from=/tmp/x4plus_netD

The file may hold BasicSR's {'params': sd}, {'params_ema': sd} (both: 'params_ema' is taken
unless --key says otherwise), {'state_dict': sd} or the bare state dict sd; it is read without
torch and no code from it runs (`interop.torch_io`, `interop.safetensors_io`). `--arch=auto` (the
default) detects the architecture and its hyper-parameters from the tensor names and shapes
(`interop.detect`: one rule table per family) and says what it found in one line; an explicit
`--arch` checks the file is one. The few fields no shape tells have flags. The workdir gets:

* `checkpoints/0`: an orbax checkpoint whose `state` holds `step`, `params`, `ema_params` (the
  same weights) and `model_state` (a discriminator: `d_params`, `d_model_state`), so that
  `--mode=eval`, `evaluate.restore_eval_variables`, `checkpointing.restore_generator` and
  `--config.init_from=<workdir>` (a discriminator: `--config.init_d_from=<workdir>`) read it as
  a checkpoint of a training run;
* `config.json`: the full config (`config_base.base_config()`, or `gan_config()` for a
  discriminator, with model.*, scale and ema_decay=0 set);
* `config.py`: the same config as a config file for `python -m jaxsr.main --config=...`.

Mapping: `interop.variables` (PyTorch names and layouts onto Linen variables). Training can also
start from such files directly: `--config.init_from=basicsr:<G file>` and, for a GAN,
`--config.init_d_from=basicsr:<D.pth>` (see `train.load_init_variables`).
"""

import os
from typing import Any, Dict

from absl import app
from absl import flags
from absl import logging
import ml_collections
import numpy as np

from jaxsr import checkpointing
from jaxsr import cli
from jaxsr import config_base
from jaxsr import state as state_lib
from jaxsr.interop import detect as detect_lib
from jaxsr.interop import load as interop_load
from jaxsr.models import srvgg

# ---------------------------------------------------------------------------------------------
# Workdir.


def make_config(arch: str, hparams: Dict[str, Any]) -> ml_collections.ConfigDict:
  """The config whose model (or discriminator) is `arch` with `hparams`: `base_config()` with
  model.*, scale and ema_decay=0 (eval reads `params`); for a discriminator `gan_config()`
  with discriminator.* and data.gt_size = its input size."""
  if interop_load.is_discriminator(arch):
    config = config_base.gan_config()
    config.discriminator.name = detect_lib.discriminator_archs()[arch]
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
    arch: an architecture name (`interop.detect.all_archs()`).
    hparams: the model kwargs (the family's rule table).
    variables: Linen variables of that model (`interop.load.load_variables`).
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
  if interop_load.is_discriminator(arch):
    state = {"step": np.int32(0), "d_params": params, "d_model_state": model_state}
  else:
    state = {"step": np.int32(0), "params": params, "ema_params": params,
             "model_state": model_state}
  checkpointing.save(manager, 0, state, {"next_step": 0})
  manager.close()
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  if interop_load.is_discriminator(arch):
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
  """`interop.load.load_variables(path, arch, key=key, **overrides)` (arch 'auto' detects it)
  then `write_workdir`; prints what was read in one line; returns the config written."""
  loaded = interop_load.load_variables(path, arch, key=key, **overrides)
  print(f"{path}: {loaded.summary}", flush=True)
  config = write_workdir(workdir, loaded.arch, loaded.hparams, loaded.variables,
                         os.path.abspath(path))
  logging.info("Converted %s into %s", path, workdir)
  return config


# ---------------------------------------------------------------------------------------------
# Command line.


def _define_flags() -> None:
  """Flags of `python -m jaxsr.convert` (defined only when run as a program)."""
  flags.DEFINE_enum("from", "basicsr", ["basicsr"], "Format of the input weights (PyTorch "
                    "state dicts of BasicSR, Real-ESRGAN, the official repositories).")
  flags.DEFINE_enum("arch", interop_load.AUTO, [interop_load.AUTO, *detect_lib.all_archs()],
                    "Architecture of the weights; auto: detected from the state dict.")
  flags.DEFINE_string("input", None, "The .pth or .safetensors file.")
  flags.DEFINE_string("workdir", None, "Output directory (checkpoint, config.json, config.py).")
  flags.DEFINE_enum("key", "", ["", "params_ema", "params", "state_dict"],
                    "Entry of the file to read; '' = params_ema, else params, else state_dict, "
                    "else the bare state dict.")
  flags.DEFINE_integer("scale", None, "Upscale factor, only where the shapes cannot tell "
                       "(rrdbnet / srvgg with num_in_ch != num_out_ch).")
  flags.DEFINE_enum("act_type", None, list(srvgg.ACT_TYPES),
                    "srvgg activation; default: prelu if PReLU weights are present, else relu.")
  flags.DEFINE_float("res_scale", None, "edsr residual scale (not in the weights; default 1, "
                     "the full EDSR uses 0.1).")
  flags.DEFINE_boolean("skip_connection", None, "unet_discriminator U-Net skips (not in the "
                       "weights; default True, as Real-ESRGAN).")
  flags.mark_flags_as_required(["input", "workdir"])


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
