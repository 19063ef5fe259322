"""The common config schema: every `configs/*.py` starts from `base_config()`.

Every config uses the same names for the common fields (the commands, scripts and the trainer rely
on them). `validate(config)` rejects unknown keys and inconsistent values before anything is
compiled; model hyper-parameters (`config.model.*` other than `name`) are checked by the model
registry against the model's own fields.
"""

from typing import Optional

import ml_collections

DTYPES = ("float32", "bfloat16")
PIXEL_LOSSES = ("l1", "l2", "charbonnier")
SCHEDULES = ("constant", "multistep", "cosine")


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
  c.init_from = ""  # Optional workdir or checkpoint directory whose params initialise the model.

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
  c.loss.pixel_weight = 1.0

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 2e-4
  c.optim.b1 = 0.9
  c.optim.b2 = 0.99
  c.optim.weight_decay = 0.0
  c.optim.schedule = "multistep"  # constant | multistep | cosine
  c.optim.milestones = (200_000, 400_000, 600_000, 800_000)  # multistep: steps where lr *= gamma.
  c.optim.gamma = 0.5
  c.optim.warmup_steps = 0  # Linear warm-up (cosine and multistep).
  c.optim.min_lr_ratio = 0.0  # cosine: final lr / peak lr.
  c.optim.grad_clip_norm = 0.0  # 0 disables global-norm clipping.

  c.eval = ml_collections.ConfigDict()
  c.eval.datasets = ""  # Comma-separated specs: folder:<dir> or a tfds name.
  c.eval.checkpoint = "best"  # best | latest | <step>  (eval mode)
  c.eval.use_ema = True  # Evaluate the EMA parameters when ema_decay > 0.
  c.eval.num_samples = 4  # Images drawn into the sample grid at each validation.
  c.eval.save_images = True  # Eval mode writes the SR images as PNG.
  return c


def _flat_keys(config: ml_collections.ConfigDict, prefix: str = "") -> set:
  keys = set()
  for key, value in config.items():
    name = prefix + key
    if isinstance(value, ml_collections.ConfigDict):
      keys |= _flat_keys(value, name + ".")
    else:
      keys.add(name)
  return keys


def validate(config: ml_collections.ConfigDict,
             device_count: Optional[int] = None) -> None:
  """Raises ValueError naming every unknown key or inconsistent value."""
  known = _flat_keys(base_config())
  errors = []
  for key in sorted(_flat_keys(config) - known):
    if not key.startswith("model."):
      errors.append(f"unknown config key '{key}'")
  if config.scale not in (1, 2, 3, 4, 8):
    errors.append(f"scale={config.scale} is not one of 1, 2, 3, 4, 8")
  if config.dtype not in DTYPES:
    errors.append(f"dtype='{config.dtype}' is not one of {DTYPES}")
  if config.loss.pixel not in PIXEL_LOSSES:
    errors.append(f"loss.pixel='{config.loss.pixel}' is not one of {PIXEL_LOSSES}")
  if config.optim.schedule not in SCHEDULES:
    errors.append(f"optim.schedule='{config.optim.schedule}' is not one of {SCHEDULES}")
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
