"""The common config schema: every `configs/*.py` starts from `base_config()` (PSNR-oriented
training) or `gan_config()` (adds a discriminator, its optimizer and the adversarial loss);
`realworld_config()` adds Real-ESRGAN's degradations to either (LR made on the device).

Every config uses the same names for the common fields (the commands, scripts and the trainer rely
on them). `validate(config)` rejects unknown keys and inconsistent values before anything is
compiled; model hyper-parameters (`config.model.*` other than `name`) are checked by the model
registry against the model's own fields.
"""

import importlib.util
import math
import numbers
import os
from typing import Optional

import ml_collections
import numpy as np

from jaxsr import data_spec
from jaxsr import losses
from jaxsr import models
from jaxsr.degradations import config as degradation_config

DTYPES = ("float32", "bfloat16")
PIXEL_LOSSES = tuple(losses.PIXEL_LOSSES)
FEATURE_CRITERIA = tuple(losses.PERCEPTUAL_CRITERIA)
SCHEDULES = ("constant", "multistep", "cosine")
GAN_TYPES = losses.GAN_TYPES
LPIPS_NETS = ("", "alex", "vgg")
# Prefixes of free-form sub-configs, checked by their registries instead.
_OPEN_PREFIXES = ("model.", "discriminator.")


def base_config() -> ml_collections.ConfigDict:
  """Defaults shared by every config; a config file overrides what it needs."""
  c = ml_collections.ConfigDict()
  c.scale = 4
  c.seed = 0
  c.batch_size = 16  # Global batch, split over processes and devices.
  c.num_train_steps = 1000
  c.log_every_steps = 100
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 3  # The last K are kept, plus the best by validation Y-PSNR.
  c.dtype = "float32"  # Computation dtype of the model: float32 | bfloat16.
  c.ema_decay = 0.999  # 0 disables the EMA of the parameters.
  # Optional: initialises the model from a workdir, a checkpoint dir, basicsr:<file.pth> or
  # model:<OpenModelDB id> (downloaded and converted once, jaxsr.hub).
  c.init_from = ""
  c.model_registry = ""  # More OpenModelDB entries for model:<id> (files, folders, URLs; commas).

  c.model = ml_collections.ConfigDict()
  c.model.name = "msrresnet"  # Any name in jaxsr.models.MODELS; other fields go to the model.

  c.data = ml_collections.ConfigDict()
  c.data.train = ""  # folder:<dir> | paired:<lr_dir>:<hr_dir> | tfds:<name>[:<split>]
  c.data.data_dir = ""  # tensorflow-datasets data_dir ('' = tfds default).
  c.data.gt_size = 96  # HR training patch side (a multiple of scale; 96 suits x2, x3, x4).
  c.data.use_flip = True
  c.data.use_rot = True
  c.data.cache = False  # Keep decoded training images in memory.
  c.data.quantize_lr = True  # Round generated LR to 8-bit levels, like LR PNGs.
  c.data.prefetch = 2

  c.loss = ml_collections.ConfigDict()
  c.loss.pixel = "l1"  # l1 | l2 | charbonnier
  c.loss.pixel_weight = 1.0  # 0 drops the pixel term.
  # VGG19 feature losses (BasicSR PerceptualLoss); weight 0 disables each.
  c.loss.perceptual_weight = 0.0
  c.loss.style_weight = 0.0  # Gram-matrix (style) loss on the same layers.
  c.loss.perceptual_layers = "conv5_4:1.0"  # <layer>:<weight>,...; convX_Y before ReLU, reluX_Y after.
  c.loss.perceptual_criterion = "l1"  # l1 | l2 | fro
  c.loss.vgg_weights = ""  # Keras vgg19 ..._notop.h5 or torchvision vgg19-*.pth ('' = Keras cache).
  c.loss.vgg_input_norm = True  # Normalise inputs as the VGG weights expect (ImageNet mean/std).

  c.optim = optim_config()

  c.eval = ml_collections.ConfigDict()
  c.eval.datasets = ""  # Comma-separated specs: folder:<dir> or a tfds name.
  c.eval.checkpoint = "best"  # best | latest | <step>  (eval mode)
  c.eval.use_ema = True  # Evaluate the EMA parameters when ema_decay > 0.
  c.eval.num_samples = 4  # Images drawn into the sample grid at each validation.
  c.eval.save_images = True  # Eval mode writes the SR images as PNG.
  c.eval.bicubic_baseline = False  # Eval mode also measures MATLAB bicubic, beside the model.
  c.eval.noref = True  # Eval mode: contrast, sharpness, blur, aliasing of SR, bicubic and HR.
  c.eval.lpips = ""  # Eval mode LPIPS: '' (off) | alex | vgg (needs local weights, below).
  c.eval.lpips_weights = ""  # LPIPS linear heads (lpips package weights/v0.1/<net>.pth).
  c.eval.lpips_backbone = ""  # torchvision alexnet-owt-7be5be79.pth / vgg16-397923af.pth.
  return c


def optim_config() -> ml_collections.ConfigDict:
  """Adam(W) with a learning-rate schedule; `optim` (generator) and `optim_d` (discriminator)."""
  o = ml_collections.ConfigDict()
  o.learning_rate = 2e-4
  o.b1 = 0.9
  o.b2 = 0.99
  o.weight_decay = 0.0
  o.schedule = "multistep"  # constant | multistep | cosine
  o.milestones = (200_000, 400_000, 600_000, 800_000)  # multistep: steps where lr *= gamma.
  o.gamma = 0.5
  o.warmup_steps = 0  # Linear warm-up (cosine and multistep).
  o.min_lr_ratio = 0.0  # cosine: final lr / peak lr.
  o.grad_clip_norm = 0.0  # 0 disables global-norm clipping.
  return o


def gan_config() -> ml_collections.ConfigDict:
  """`base_config()` plus a discriminator, its optimizer, the adversarial loss and the schedule
  of generator / discriminator updates. A config with a `discriminator` trains a GAN."""
  c = base_config()
  c.discriminator = ml_collections.ConfigDict()
  c.discriminator.name = "vgg_style"  # A name in jaxsr.models.DISCRIMINATORS; other fields go to it.
  # Optional GAN workdir, checkpoint dir or basicsr:<netD.pth> initialising the discriminator
  # (d_params and d_model_state) of a fresh run, as init_from does the generator.
  c.init_d_from = ""
  c.optim_d = optim_config()
  c.loss.gan_type = "vanilla"  # vanilla | lsgan | hinge | ragan (relativistic average, ESRGAN)
  c.loss.gan_weight = 1e-3  # Weight of the adversarial term in the generator loss.
  c.loss.real_label = 1.0  # < 1: one-sided label smoothing of the discriminator's real target.
  c.gan = ml_collections.ConfigDict()
  c.gan.d_steps_per_g_step = 1  # Discriminator updates per train step (on the same batch).
  c.gan.d_first = False  # Update D before G (BasicSR: G first, then D on the same output).
  c.gan.d_warmup_steps = 0  # First steps update D only (BasicSR net_d_init_iters).
  return c


def realworld_config(gan: bool = False) -> ml_collections.ConfigDict:
  """`base_config()` (or `gan_config()`) whose LR is made by Real-ESRGAN's degradations on the
  device (`config.degradation`, see `jaxsr.degradations`) instead of by bicubic on the host.

  The host pipeline yields HR crops of `data.crop_pad_size` (smaller images reflect-padded);
  the degradations make a `crop_pad_size / scale` LR from each, and the `gt_size` training pair
  is cropped from the two.
  """
  c = gan_config() if gan else base_config()
  c.batch_size = 12
  c.data.gt_size = 256
  c.data.use_rot = False  # Real-ESRGAN: horizontal flip only.
  c.data.crop_pad_size = 400  # HR crop the degradations start from (Real-ESRGAN's 400).
  # Multi-scale GT (Real-ESRGAN's generate_multiscale_DF2K.py): each example's image is first
  # resized by one factor drawn uniformly from these (Lanczos); () or (1.0,) = off.
  c.data.multiscale_factors = ()
  # With multiscale_factors: also draw the version whose shortest edge is this many pixels
  # (the script's 400); 0 = no such version.
  c.data.multiscale_shortest_edge = 0
  c.degradation = degradation_config.default_config()
  return c


def config_from_file(path: str, *args) -> ml_collections.ConfigDict:
  """`get_config(*args)` of the config file `path`: a config that extends another loads it
  with `config_from_file(os.path.join(os.path.dirname(__file__), '<other>.py'))`."""
  name = os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(*args)


def is_realworld(config: ml_collections.ConfigDict) -> bool:
  """True for a config built on `realworld_config()` (LR made by the degradations)."""
  return "degradation" in config


def is_gan(config: ml_collections.ConfigDict) -> bool:
  """True for a config built on `gan_config()` (it has a discriminator)."""
  return "discriminator" in config


def parse_layer_weights(spec: str) -> dict:
  """'conv5_4:1.0,relu4_4:0.5' -> {'conv5_4': 1.0, 'relu4_4': 0.5}; ValueError if malformed."""
  weights = {}
  for item in filter(None, (s.strip() for s in spec.split(","))):
    name, sep, value = item.partition(":")
    try:
      weights[name.strip()] = float(value) if sep else 1.0
    except ValueError:
      raise ValueError(f"loss.perceptual_layers: bad weight in '{item}' (want <layer>:<float>)"
                       ) from None
  if not weights:
    raise ValueError("loss.perceptual_layers is empty (want e.g. 'conv5_4:1.0')")
  return weights


def _flat_items(config: ml_collections.ConfigDict, prefix: str = "") -> dict:
  """{dotted key: value} of the fields of `config`."""
  items = {}
  for key, value in config.items():
    name = prefix + key
    if isinstance(value, ml_collections.ConfigDict):
      items.update(_flat_items(value, name + "."))
    else:
      items[name] = value
  return items


def _kind(value) -> str:
  """'bool', 'int', 'float', 'str', 'tuple' or the type's name (a config field's kind)."""
  if isinstance(value, (bool, np.bool_)):
    return "bool"
  for kind, types in (("int", numbers.Integral), ("float", numbers.Real), ("str", str),
                      ("tuple", (tuple, list))):
    if isinstance(value, types):
      return kind
  return type(value).__name__


def _fits(value, like) -> bool:
  """True if `value` has the kind of the template's `like` (an int fits a float field); a
  tuple's elements the kind of `like`'s (numbers, where `like` is empty)."""
  want, have = _kind(like), _kind(value)
  if want == "float" and have == "int":
    return True
  if want != have:
    return False
  if want == "float":
    return math.isfinite(value)
  if want == "tuple":
    like_items = tuple(like) or (0.0,)
    return all(any(_fits(v, l) for l in like_items) for v in value)
  return True


def _type_errors(config: ml_collections.ConfigDict,
                 template: ml_collections.ConfigDict) -> list:
  """A missing field, or a value of another kind than the template's (a config file may assign
  anything; command-line overrides are type-checked by ml_collections) or not finite."""
  values, errors = _flat_items(config), []
  for key, like in _flat_items(template).items():
    if key not in values:
      errors.append(f"config key '{key}' is missing (build configs on jaxsr.config_base)")
    elif not _fits(values[key], like):
      kind = _kind(like)
      if kind == "tuple":
        kind = f"tuple of {_kind(like[0]) if like else 'float'}"
      errors.append(f"{key}={values[key]!r} must be a{'n' if kind[0] == 'i' else ''} {kind}"
                    f"{' (finite)' if 'float' in kind else ''}")
  return errors


# Numeric fields and their [min, max] (None: unbounded), beside the checks of `validate`.
_BOUNDS = {
    "seed": (0, 2**32 - 1), "data.gt_size": (1, None), "data.prefetch": (-1, None),
    "eval.num_samples": (0, None), "loss.pixel_weight": (0, None),
    "loss.perceptual_weight": (0, None), "loss.style_weight": (0, None),
    "loss.gan_weight": (0, None), "gan.d_warmup_steps": (0, None),
    "data.crop_pad_size": (1, None),
}
_OPTIM_BOUNDS = {
    "learning_rate": (0, None), "b1": (0, 1), "b2": (0, 1), "weight_decay": (0, None),
    "gamma": (0, None), "warmup_steps": (0, None), "min_lr_ratio": (0, 1),
    "grad_clip_norm": (0, None),
}


def _value_errors(config: ml_collections.ConfigDict) -> list:
  """Numbers out of `_BOUNDS`, bad optimizer settings, checkpoint names and data specs."""
  bounds = dict(_BOUNDS)
  for name in ("optim", "optim_d"):
    bounds.update({f"{name}.{key}": b for key, b in _OPTIM_BOUNDS.items()})
  values, errors = _flat_items(config), []
  for key, (low, high) in sorted(bounds.items()):
    if key in values and not ((low is None or values[key] >= low)
                              and (high is None or values[key] <= high)):
      errors.append(f"{key}={values[key]} must be in [{low}, {'inf' if high is None else high}]")
  for name in ("optim", "optim_d"):
    if name not in config:
      continue
    for beta in ("b1", "b2"):  # 1 divides by zero in Adam's bias correction.
      if config[name][beta] == 1:
        errors.append(f"{name}.{beta}=1 must be < 1")
    milestones = tuple(config[name].milestones)
    if any(m <= 0 for m in milestones):
      errors.append(f"{name}.milestones={milestones} must be positive steps")
  if not (config.eval.checkpoint in ("best", "latest") or config.eval.checkpoint.isdigit()):
    errors.append(f"eval.checkpoint='{config.eval.checkpoint}' is not best, latest or a step")
  if config.data.train:
    try:
      data_spec.parse_spec(config.data.train)
    except ValueError as e:
      errors.append(f"data.train: {e}")
  return errors


def validate(config: ml_collections.ConfigDict,
             device_count: Optional[int] = None) -> None:
  """Raises ValueError naming every unknown key or inconsistent value."""
  if is_realworld(config):
    template = realworld_config(gan=is_gan(config))
  else:
    template = gan_config() if is_gan(config) else base_config()
  errors = [f"unknown config key '{key}'"
            for key in sorted(set(_flat_items(config)) - set(_flat_items(template)))
            if not key.startswith(_OPEN_PREFIXES)]
  errors += _type_errors(config, template)
  if errors:  # The checks below need every field, of its kind.
    raise ValueError("Invalid config:\n  " + "\n  ".join(errors))
  errors += _value_errors(config)
  if config.scale not in (1, 2, 3, 4, 8):
    errors.append(f"scale={config.scale} is not one of 1, 2, 3, 4, 8")
  if config.model.name not in models.MODELS:
    errors.append(f"model.name='{config.model.name}' is not one of {sorted(models.MODELS)}")
  elif config.scale not in models.supported_scales(config.model.name):
    errors.append(f"scale={config.scale} is not supported by model.name='{config.model.name}' "
                  f"(scales {models.supported_scales(config.model.name)})")
  if is_gan(config) and config.discriminator.name not in models.DISCRIMINATORS:
    errors.append(f"discriminator.name='{config.discriminator.name}' is not one of "
                  f"{sorted(models.DISCRIMINATORS)}")
  if config.dtype not in DTYPES:
    errors.append(f"dtype='{config.dtype}' is not one of {DTYPES}")
  if config.loss.pixel not in PIXEL_LOSSES:
    errors.append(f"loss.pixel='{config.loss.pixel}' is not one of {PIXEL_LOSSES}")
  if config.loss.perceptual_criterion not in FEATURE_CRITERIA:
    errors.append(f"loss.perceptual_criterion='{config.loss.perceptual_criterion}' is not one "
                  f"of {FEATURE_CRITERIA}")
  if config.loss.perceptual_weight or config.loss.style_weight:
    try:
      layers = tuple(parse_layer_weights(config.loss.perceptual_layers))
      from jaxsr.models import vgg  # pylint: disable=g-import-not-at-top  # h5py: feature losses.
      vgg.check_layers(layers)
    except ValueError as e:  # parse_layer_weights names the field; check_layers does not.
      errors.append(str(e) if str(e).startswith("loss.") else f"loss.perceptual_layers: {e}")
  optims = ("optim", "optim_d") if is_gan(config) else ("optim",)
  for name in optims:
    if config[name].schedule not in SCHEDULES:
      errors.append(f"{name}.schedule='{config[name].schedule}' is not one of {SCHEDULES}")
  if is_gan(config):
    errors += _gan_errors(config)
  if is_realworld(config):
    errors += _realworld_errors(config)
  if config.eval.lpips not in LPIPS_NETS:
    errors.append(f"eval.lpips='{config.eval.lpips}' is not one of {LPIPS_NETS}")
  if config.data.gt_size % max(config.scale, 1):
    errors.append(f"data.gt_size={config.data.gt_size} is not a multiple of scale={config.scale}")
  for key in ("batch_size", "num_train_steps", "log_every_steps", "eval_every_steps",
              "checkpoint_every_steps", "keep_checkpoints"):
    if config[key] <= 0:
      errors.append(f"{key}={config[key]} must be positive")
  if device_count and config.batch_size % device_count:
    errors.append(f"batch_size={config.batch_size} is not divisible by the "
                  f"{device_count} devices of the mesh")
  if not 0.0 <= config.ema_decay < 1.0:
    errors.append(f"ema_decay={config.ema_decay} must be in [0, 1)")
  if errors:
    raise ValueError("Invalid config:\n  " + "\n  ".join(errors))


def _realworld_errors(config: ml_collections.ConfigDict) -> list:
  errors = degradation_config.errors(config.degradation, batch_size=config.batch_size)
  crop = config.data.crop_pad_size
  if crop % max(config.scale, 1):
    errors.append(f"data.crop_pad_size={crop} is not a multiple of scale={config.scale}")
  if not 0 < config.data.gt_size <= crop:
    errors.append(f"data.gt_size={config.data.gt_size} must be in (0, data.crop_pad_size={crop}]")
  factors = tuple(config.data.multiscale_factors)
  if any(not 0.0 < float(f) <= 1.0 for f in factors):
    errors.append(f"data.multiscale_factors={factors} must be in (0, 1]")
  if config.data.multiscale_shortest_edge < 0:
    errors.append(f"data.multiscale_shortest_edge={config.data.multiscale_shortest_edge} must be "
                  ">= 0")
  return errors


def _gan_errors(config: ml_collections.ConfigDict) -> list:
  errors = []
  if config.loss.gan_type not in GAN_TYPES:
    errors.append(f"loss.gan_type='{config.loss.gan_type}' is not one of {GAN_TYPES}")
  if not 0.0 < config.loss.real_label <= 1.0:
    errors.append(f"loss.real_label={config.loss.real_label} must be in (0, 1]")
  if config.loss.gan_type == "hinge" and config.loss.real_label != 1.0:
    errors.append("loss.real_label (label smoothing) does not apply to the hinge loss")
  if config.gan.d_steps_per_g_step < 1:
    errors.append(f"gan.d_steps_per_g_step={config.gan.d_steps_per_g_step} must be >= 1")
  if not 0 <= config.gan.d_warmup_steps < config.num_train_steps:
    errors.append(f"gan.d_warmup_steps={config.gan.d_warmup_steps} must be in "
                  f"[0, num_train_steps)")
  return errors
