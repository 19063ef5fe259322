"""Seconds per train step of jaxsr and of BasicSR 1.4.2 on identical shapes, in one run; prints
one JSON line per row (stdout; logs go to stderr).

The BasicSR side is BasicSR's own code: its archs built by its model classes from an opt dict
like its train_*.yml (`basicsr.models.build_model(opt)`), fed with `model.feed_data({'lq',
'gt'})` and timed on `model.optimize_parameters(current_iter)`: `SRModel` for the PSNR rows,
`ESRGANModel` (G step, then D step, EMA) for the GAN row, realesrgan 0.3.0's `RealESRGANModel`
for the Real-ESRGAN row. The jaxsr side is
`step_timer.time_train_step` on the matching configs/*.py (its jit-compiled train step; compile
time excluded). The BasicSR opt is derived from the jaxsr config (same architecture
hyper-parameters, batch, LR patch, losses and weights, Adam betas / lr / weight decay, EMA decay,
LR schedule kind), so the two sides cannot drift apart. Both sides time `--steps` steps on one
random batch after `--warmup` untimed steps; `ratio` = torch_median_s / jaxsr_median_s (> 1:
jaxsr faster).

Rows (--rows, default all; --batch / --lr_size override the shapes of every selected row):
  msrresnet         configs/msrresnet_x4.py: MSRResNet x4, 64 feat, 16 blocks; batch 16, LR 32
                    (= train_MSRResNet_x4.yml); L1; cosine schedule.
  rrdbnet           configs/rrdbnet_psnr_x4.py: RRDBNet x4, 64 feat, 23 RRDB, grow 32; batch 4,
                    LR 32 (the yml's batch 16 cut to 4 for a 2-core CPU); L1; multistep.
  esrgan            configs/esrgan_x4.py: RRDBNet G + VGG-style D (input 128); batch 4, LR 32
                    (HR 128; the yml's batch 16 cut to 4); L1 1e-2 + VGG19 conv5_4 L1
                    perceptual 1.0 + RaGAN 5e-3; Adam 1e-4 for G and D. The VGG19 weights are
                    random on both sides (no download; the timing does not depend on their
                    values): jaxsr reads a random Keras-layout .h5, BasicSR a random
                    torchvision vgg19 state dict written where its VGGFeatureExtractor looks
                    for it (the relative VGG_PRETRAIN_PATH
                    'experiments/pretrained_models/vgg19-dcbb9e9d.pth', under the temporary
                    working directory of the torch process). --perceptual=off drops the
                    perceptual loss on both sides.
  realesrgan        configs/realesrgan_x4plus.py against realesrgan 0.3.0's RealESRGANModel
                    (`optimize_parameters`: G step, then D step, EMA): RRDBNet 64x23 G +
                    UNetDiscriminatorSN (64, skips; realesrgan's own arch); batch 4 (the
                    yml's 12 cut to 4), LR 64 (GT 256); L1 1.0 and VGG19 perceptual (conv1_2
                    .. conv5_4 weighted 0.1 0.1 1 1 1, L1) on the USM-sharpened GT + vanilla
                    GAN 0.1 on the plain GT; Adam 1e-4 (0.9, 0.99) for G and D, MultiStepLR;
                    EMA 0.999. The step only: feed_data's paired path (lq, gt, USM of gt) is
                    untimed, the degradations are bench/degrade.py's; jaxsr's side is its GAN
                    step on ready pairs (the config without its degradation stage). VGG19
                    weights random on both sides, as esrgan's. On the CPU RealESRGANModel's
                    `.cuda()` calls return the tensor (bench/degrade.py's cuda_is_identity).
  swinir_light      configs/swinir_light_x4.py: SwinIR-S x4, embed 60, depths / heads 6x4,
                    window 8, mlp 2, 'pixelshuffledirect'; batch 16, LR 64 (img_size 64).
  swinir_classical  configs/swinir_classical_x2.py: SwinIR-M x2, embed 180, depths / heads 6x6,
                    window 8, mlp 2, 'pixelshuffle'; batch 4 (the config's 32 cut for a 2-core
                    CPU), LR 48 (img_size 48).
Families BasicSR 1.4.2 has no arch for: the torch side is a plain PyTorch train step
(`plain_torch_step`) on spandrel 0.4.2's own module (`spandrel.architectures.<F>.__arch...`, in
train mode), built from the jaxsr config's hyper-parameters (`plain_peer`; fields the config
leaves out take the jaxsr model's defaults) with the config's optimizer (Adam, or AdamW with
its weight decay), MultiStepLR / cosine schedule, pixel loss and EMA (BasicSR's update); the
step is what BasicSR's SRModel runs (zero_grad, forward, loss, backward, step, EMA) plus the
scheduler's step. Batches cut for a 2-core CPU (--batch / --lr_size override):
  span       configs/span_x4.py: SPAN x4 48 ch (training form: Conv3XC branches); batch 4 (the
             config's 64), LR 64; L1; Adam 5e-4; EMA 0.999.
  dat        configs/dat_x4.py: DAT x4 (180, 6x6, split (8, 32), expansion 4); batch 2 (32;
             >= 2: BatchNorm in its spatial interaction), LR 64; drop path 0.1; no EMA.
  omnisr     configs/omnisr_x4.py: OmniSR x4 (64, 5 OSAGs, window 8); batch 4 (64), LR 64;
             AdamW 5e-4 weight decay 1e-4; no EMA.
  realplksr  configs/realplksr_x4.py: RealPLKSR x4 (64, 28 blocks, kernel 17, LayerNorm);
             batch 4 (16), LR 48; EMA 0.999.
  hat        configs/hat_x4.py: HAT x4 (HAT-M: 180, 6x6, window 16); batch 1 (32), LR 64; drop
             path 0.1; EMA 0.999.
  rcan       configs/rcan_x4.py: RCAN x4 (10x20, 64 feat); batch 2 (16), LR 48; Adam 1e-4
             (0.9, 0.999); no EMA. Its forward scales the input in place: each step feeds a copy.
Both SwinIR sides use drop_path_rate 0.1 (stochastic depth active in training). EMA: both sides
0.999 for the BasicSR rows, the config's for the plain rows (--ema_decay sets it for every row;
0 turns it off on both). --jaxsr_impl sets jaxsr implementation fields (scan_blocks, remat,
attention; no effect on the math) over the config, e.g. 'scan_blocks=false'. float32 on both
sides by default; --dtype sets jaxsr's computation dtype, --torch_mode BasicSR's (float32,
float32_tf32, bf16_autocast: `optimize_parameters` under `torch.autocast(bfloat16)`, or best:
channels_last, autocast bf16 and `torch.compile` of each network's forward, as traiNNer-redux
trains; the plain step the same around its forward and loss) and --torch_device puts the torch
side on the GPU (`num_gpu: 1`, cudnn.benchmark; each step synchronized). --tiny shrinks
every architecture to a few narrow blocks on both sides (smoke runs; bench/gpu_suite.py).
The jaxsr side also reports its lower / compile seconds and analytic FLOPs (jaxsr.flops) with
the MFU they give on a known GPU.

Threads: --threads (default: every core this process may use) sets torch.set_num_threads; XLA's
CPU backend has no such setting and always uses every core (restrict both with `taskset -c`).
A row that fails on one side prints its error in that side's field and the run goes on.

Environment. jaxsr's venv runs this script; the torch side runs in a subprocess of
--torch_python (default: this Python), so jaxsr's venv needs no torch. The torch venv used
(PyPI's torch 2.14.1 is the CUDA build, a 5.5 GB venv, and runs on CPU; PyPI's torchvision 0.28.0
does not load with the 2.13.0+cpu wheel, its compiled ops need libtorch_cuda):
  python3 -m venv /tmp/benchvenv
  /tmp/benchvenv/bin/pip install torch==2.14.1 torchvision==0.29.1
  /tmp/benchvenv/bin/pip install opencv-python-headless scipy scikit-image pyyaml tqdm lmdb \
      addict future yapf requests
  /tmp/benchvenv/bin/pip install --no-build-isolation --no-deps basicsr==1.4.2
(basicsr's build imports torch, hence --no-build-isolation; --no-deps keeps its unpinned
requirements from replacing torch. torchvision must be the build made for that torch.) The
realesrgan row also needs `pip install --no-build-isolation --no-deps realesrgan==0.3.0`.
basicsr 1.4.2 imports `torchvision.transforms.functional_tensor`, gone since torchvision 0.17:
the torch process aliases it to `torchvision.transforms.functional` before importing basicsr;
nothing else of BasicSR is patched.

The measurement (each row times the BasicSR side, then jaxsr's; on an otherwise idle machine:
torch's OpenMP threads slow down many-fold when other processes share the cores; expect roughly
30-60 min on 2 cores, mostly the esrgan and swinir rows):
  venv/bin/python bench/compare_basicsr.py --torch_python=/tmp/benchvenv/bin/python \
      --warmup=2 --steps=5 | tee /tmp/compare_basicsr.jsonl
Smoke test (tiny shapes, both sides; esrgan needs HR 128 or 256 for the VGG-style D):
  venv/bin/python bench/compare_basicsr.py --torch_python=/tmp/benchvenv/bin/python \
      --rows=msrresnet,rrdbnet,swinir_light,swinir_classical --batch=1 --lr_size=16 \
      --warmup=1 --steps=1
  venv/bin/python bench/compare_basicsr.py --torch_python=/tmp/benchvenv/bin/python \
      --rows=esrgan --batch=1 --lr_size=32 --warmup=1 --steps=1
  venv/bin/python bench/compare_basicsr.py --torch_python=/tmp/benchvenv/bin/python \
      --rows=realesrgan --tiny --batch=1 --lr_size=8 --warmup=1 --steps=1
  venv/bin/python bench/compare_basicsr.py --torch_python=/tmp/benchvenv/bin/python \
      --rows=span,dat,omnisr,realplksr,hat,rcan --tiny --batch=2 --lr_size=16 --warmup=1 \
      --steps=1
The plain rows need spandrel 0.4.2 in --torch_python (`pip install spandrel==0.4.2`); their
measurement (~1-4 min per row on 2 cores):
  venv/bin/python bench/compare_basicsr.py --torch_python=/tmp/benchvenv/bin/python \
      --rows=span,dat,omnisr,realplksr,hat,rcan --warmup=1 --steps=3
"""

import contextlib
import copy
import importlib.util
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback

from peer_process import cpu_info, error_text  # noqa: E402  (bench/)
import peer_process  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAIN = "plain"  # ROWS' torch side: a plain PyTorch train step on spandrel's module.

# row -> (config file under configs/, default batch, default LR patch side, BasicSR model class).
ROWS = {
    "msrresnet": ("msrresnet_x4.py", 16, 32, "SRModel"),
    "rrdbnet": ("rrdbnet_psnr_x4.py", 4, 32, "SRModel"),
    "esrgan": ("esrgan_x4.py", 4, 32, "ESRGANModel"),
    # realesrgan's RealESRGANModel (its package registers the model and UNetDiscriminatorSN).
    "realesrgan": ("realesrgan_x4plus.py", 4, 64, "RealESRGANModel"),
    "swinir_light": ("swinir_light_x4.py", 16, 64, "SRModel"),
    "swinir_classical": ("swinir_classical_x2.py", 4, 48, "SRModel"),
    # BasicSR 1.4.2 has none of these archs: a plain PyTorch step with spandrel's module.
    "span": ("span_x4.py", 4, 64, PLAIN),
    "dat": ("dat_x4.py", 2, 64, PLAIN),  # batch >= 2: BatchNorm in DAT's spatial interaction
    "omnisr": ("omnisr_x4.py", 4, 64, PLAIN),
    "realplksr": ("realplksr_x4.py", 4, 48, PLAIN),
    "hat": ("hat_x4.py", 1, 64, PLAIN),
    "rcan": ("rcan_x4.py", 2, 48, PLAIN),
}
# jaxsr model fields with no effect on the math (implementation choices: attention kernel,
# scanned / rematerialised blocks).
_IMPL_FIELDS = {"name", "attention", "scan_blocks", "remat"}
# The GAN models' BasicSR class -> (the GAN loss and the jaxsr discriminator it takes).
GAN_MODELS = {"ESRGANModel": ("ragan", "vgg_style"), "RealESRGANModel": ("vanilla", "unet_sn")}
# The same for the plain rows' models (DAT's min_size pads only images under 16 pixels,
# smaller than any patch here).
_PLAIN_IMPL_FIELDS = _IMPL_FIELDS | {"min_size"}
# --tiny for the plain rows (step_timer.shrink knows the BasicSR rows' models only).
PLAIN_TINY = peer_process.FAMILY_TINY


# ----------------------------------------------------------------------------- helpers (both)


# ----------------------------------------------------------------------------- torch side

def torch_child(spec_path: str, out_path: str) -> None:
  """Runs in --torch_python: times BasicSR's model.optimize_parameters per the spec (or, for
  the plain rows, `plain_torch_step`)."""
  with open(spec_path) as f:
    spec = json.load(f)
  if spec.get("plain"):
    result = plain_torch_step(spec)
    with open(out_path, "w") as f:
      json.dump(result, f)
    return
  import numpy as np
  import torch
  torch.set_num_threads(spec["threads"])
  peer_process.alias_functional_tensor()
  tmp = tempfile.mkdtemp(prefix="compare_basicsr_")
  cwd = os.getcwd()
  try:
    os.chdir(tmp)
    opt = spec["opt"]
    opt["path"] = {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None,
                   "experiments_root": tmp, "models": os.path.join(tmp, "models"),
                   "training_states": os.path.join(tmp, "training_states"),
                   "log": tmp, "visualization": os.path.join(tmp, "visualization")}
    if opt["train"].get("perceptual_opt"):
      # basicsr.archs.vgg_arch loads VGG_PRETRAIN_PATH (relative to the cwd) when it exists,
      # else downloads ImageNet weights: give it random ones (PyTorch's default init).
      from torchvision.models import vgg19
      os.makedirs("experiments/pretrained_models")
      torch.manual_seed(0)
      torch.save(vgg19(weights=None).state_dict(),
                 "experiments/pretrained_models/vgg19-dcbb9e9d.pth")
    import basicsr
    from basicsr.models import build_model
    from basicsr.utils import get_root_logger
    get_root_logger()  # BasicSR's logger (stderr, warnings only: no log file).
    device = spec.get("device", "cpu")
    mode = spec.get("mode", "float32")
    if device == "cuda":
      opt["num_gpu"] = 1
      torch.backends.cudnn.benchmark = True
      torch.backends.cuda.matmul.allow_tf32 = mode == "float32_tf32"
    real_esrgan = opt["model_type"] == "RealESRGANModel"
    peer_versions = {}
    if real_esrgan:
      import realesrgan.version  # registers RealESRGANModel and its UNetDiscriminatorSN
      peer_versions["realesrgan"] = realesrgan.version.__version__
    torch.manual_seed(spec["seed"])
    # RealESRGANModel.__init__ puts its DiffJPEG and USMSharp on the GPU with `.cuda()`: on
    # the CPU (smoke runs) `.cuda()` returns the tensor itself (bench/degrade.py's patch).
    from degrade import cuda_is_identity  # bench/degrade.py
    with cuda_is_identity() if real_esrgan and device == "cpu" else contextlib.nullcontext():
      model = build_model(opt)
    if mode == "best":
      tune_for_speed(model)
    rng = np.random.default_rng(0)
    b, lr, hr = spec["batch"], spec["lr_size"], spec["hr_size"]
    data = {"lq": torch.from_numpy(rng.random((b, 3, lr, lr), np.float32)),
            "gt": torch.from_numpy(rng.random((b, 3, hr, hr), np.float32))}
    # (RealESRGANModel's feed_data makes lq contiguous and its USM `.view`s gt: no
    # channels_last input for it.)
    if mode == "best" and not real_esrgan:
      data = {k: v.contiguous(memory_format=torch.channels_last) for k, v in data.items()}
    autocast = (torch.autocast(device_type=device, dtype=torch.bfloat16)
                if mode in ("bf16_autocast", "best") else contextlib.nullcontext())
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
      torch.cuda.reset_peak_memory_stats()
    it = 0
    for _ in range(spec["warmup"]):
      it += 1
      model.feed_data(data)
      with autocast:
        model.optimize_parameters(it)
    sync()
    times = []
    for _ in range(spec["steps"]):
      it += 1
      model.feed_data(data)
      sync()
      start = time.perf_counter()
      with autocast:
        model.optimize_parameters(it)
      sync()
      times.append(time.perf_counter() - start)
    count = lambda net: sum(p.numel() for p in net.parameters())
    cls = type(model)
    result = torch_result(
        times, device, mode, {"basicsr": basicsr.__version__, **peer_versions},
        model_class=f"{cls.__module__}.{cls.__qualname__}",
        step_fn=f"{cls.optimize_parameters.__module__}.{cls.optimize_parameters.__qualname__}",
        params_g=count(model.net_g),
        params_d=count(model.net_d) if hasattr(model, "net_d") else None,
        ema=hasattr(model, "net_g_ema"))
  finally:
    os.chdir(cwd)
    shutil.rmtree(tmp, ignore_errors=True)
  with open(out_path, "w") as f:
    json.dump(result, f)


def tune_for_speed(model) -> None:
  """PyTorch at its best on BasicSR's own modules, as traiNNer-redux trains: channels_last
  memory format and `torch.compile` of each network's forward (the modules themselves stay,
  so BasicSR's EMA and optimizers see the same parameter names); bf16 autocast is added by
  the caller. The VGG-style discriminator flattens with `.view`, which channels_last
  activations do not allow: it stays contiguous (its input made so)."""
  import torch

  def compiled(net, channels_last: bool):
    forward = net.forward
    if channels_last:
      net.to(memory_format=torch.channels_last)
      net.forward = torch.compile(forward)
    else:
      net.forward = torch.compile(lambda x, *a, **k: forward(x.contiguous(), *a, **k))

  for name in ("net_g", "net_g_ema"):
    if getattr(model, name, None) is not None:
      compiled(getattr(model, name), True)
  if getattr(model, "net_d", None) is not None:
    compiled(model.net_d, type(model.net_d).__name__ != "VGGStyleDiscriminator")
  perceptual = getattr(model, "cri_perceptual", None)
  if perceptual is not None:
    compiled(perceptual.vgg, True)


def plain_torch_step(spec: dict) -> dict:
  """Runs in --torch_python for the plain rows: spandrel's module in train mode, the optimizer,
  schedule, loss and EMA of the jaxsr config (`plain_train_spec`), timed per step as BasicSR's
  SRModel runs one (`optimize_parameters`: zero_grad, forward, loss, backward, step, EMA),
  plus the scheduler's step (BasicSR's training loop does it between steps; jaxsr's step holds
  its schedule)."""
  import importlib
  import numpy as np
  import torch
  torch.set_num_threads(spec["threads"])
  import spandrel
  device = spec.get("device", "cpu")
  mode = spec.get("mode", "float32")
  if device == "cuda":
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = mode == "float32_tf32"
  module_name, class_name, kwargs = spec["peer"]
  module = importlib.import_module(module_name)
  t = spec["train"]
  torch.manual_seed(spec["seed"])
  net = getattr(module, class_name)(**kwargs).to(device).train()
  net_ema = None
  if t["ema_decay"]:  # BasicSR's SRModel: a copy in eval mode, updated after each step.
    net_ema = copy.deepcopy(net).eval()
    for p in net_ema.parameters():
      p.requires_grad_(False)
  params = [p for p in net.parameters() if p.requires_grad]  # SRModel's optimizer params
  adam = torch.optim.AdamW if t["weight_decay"] else torch.optim.Adam
  optimizer = adam(params, lr=t["lr"], betas=tuple(t["betas"]),
                   weight_decay=t["weight_decay"])
  if t["schedule"] == "cosine":
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=t["total_iter"], eta_min=t["lr"] * t["min_lr_ratio"])
  else:
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, t["milestones"], t["gamma"])
  pixel = {"l1": torch.nn.functional.l1_loss, "l2": torch.nn.functional.mse_loss,
           # BasicSR's CharbonnierLoss (eps 1e-12).
           "charbonnier": lambda x, y: torch.sqrt((x - y) ** 2 + 1e-12).mean()}[t["pixel"]]
  forward = net
  if mode == "best":  # as tune_for_speed: channels_last and torch.compile of the forward
    net.to(memory_format=torch.channels_last)
    forward = torch.compile(net)
  rng = np.random.default_rng(0)
  b, lr, hr = spec["batch"], spec["lr_size"], spec["hr_size"]
  lq = torch.from_numpy(rng.random((b, 3, lr, lr), np.float32)).to(device)
  gt = torch.from_numpy(rng.random((b, 3, hr, hr), np.float32)).to(device)
  if mode == "best":
    lq, gt = (v.contiguous(memory_format=torch.channels_last) for v in (lq, gt))
  autocast = (lambda: torch.autocast(device_type=device, dtype=torch.bfloat16)) if mode in (
      "bf16_autocast", "best") else contextlib.nullcontext
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
  decay = t["ema_decay"]

  def step():
    optimizer.zero_grad()
    with autocast():
      # A fresh copy (as SRModel.feed_data's .to(device) gives): RCAN scales its input in place.
      loss = t["pixel_weight"] * pixel(forward(lq.clone()).float(), gt)
    loss.backward()
    if t["grad_clip_norm"]:
      torch.nn.utils.clip_grad_norm_(params, t["grad_clip_norm"])
    optimizer.step()
    scheduler.step()
    if net_ema is not None:  # basicsr.models.base_model.BaseModel.model_ema
      with torch.no_grad():
        current = dict(net.named_parameters())
        for name, p in net_ema.named_parameters():
          p.mul_(decay).add_(current[name], alpha=1 - decay)

  if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
  for _ in range(spec["warmup"]):
    step()
  sync()
  times = []
  for _ in range(spec["steps"]):
    sync()
    start = time.perf_counter()
    step()
    sync()
    times.append(time.perf_counter() - start)
  return torch_result(
      times, device, mode, {"spandrel": spandrel.__version__},
      model_class=f"{module_name}.{class_name}",
      step_fn="compare_basicsr.plain_torch_step (zero_grad, forward, "
              f"{t['pixel']} loss, backward, {adam.__name__}.step, "
              f"{type(scheduler).__name__}.step{', EMA' if net_ema is not None else ''})",
      # Parameters the step trains (that got a gradient): SPAN's `eval_conv`s are parameters
      # the training forward does not use (Adam skips them; the EMA copies them as BasicSR's).
      params_g=sum(p.numel() for p in params if p.grad is not None), params_d=None,
      ema=net_ema is not None)


def torch_result(times: list, device: str, mode: str, packages: dict, **fields) -> dict:
  """The torch process's result: the step's `fields` (model_class, step_fn, params_g,
  params_d, ema), the median and each of the step `times` (s), the threads, device, mode, GPU
  and its peak memory, and the versions (torch, torchvision, numpy, python and `packages`)."""
  import numpy as np
  import torch
  import torchvision
  return {
      "median_s": round(statistics.median(times), 4),
      "times_s": [round(x, 4) for x in times],
      **fields,
      "threads": torch.get_num_threads(),
      "device": device, "mode": mode,
      "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
      "max_mem_gb": (round(torch.cuda.max_memory_allocated() / 2**30, 2)
                     if device == "cuda" else None),
      "interop_threads": torch.get_num_interop_threads(),
      "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                   **packages, "numpy": np.__version__, "python": platform.python_version()},
  }


def run_torch(spec: dict, torch_python: str) -> dict:
  return peer_process.run_torch(__file__, spec, torch_python, "compare_basicsr_spec_",
                                chdir=False)


# ----------------------------------------------------------------------------- jaxsr side

def load_config(file_name: str):
  path = os.path.join(REPO, "configs", file_name)
  if not os.path.exists(path):
    raise FileNotFoundError(f"no jaxsr config {path}")
  spec = importlib.util.spec_from_file_location(f"_config_{file_name[:-3]}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def network_g(m, scale: int, lr_size: int) -> dict:
  """BasicSR network_g for jaxsr model config `m` (same hyper-parameters)."""
  fields = dict(m.items())
  get = lambda k, d: fields.pop(k, d)
  name = get("name", None)
  nin, nout = get("num_in_ch", 3), get("num_out_ch", 3)
  if name == "msrresnet":
    net = {"type": "MSRResNet", "num_in_ch": nin, "num_out_ch": nout,
           "num_feat": get("num_feat", 64), "num_block": get("num_block", 16), "upscale": scale}
  elif name == "rrdbnet":
    net = {"type": "RRDBNet", "num_in_ch": nin, "num_out_ch": nout, "scale": scale,
           "num_feat": get("num_feat", 64), "num_block": get("num_block", 23),
           "num_grow_ch": get("num_grow_ch", 32)}
  elif name == "swinir":
    if nin != 3 or nout != 3:
      raise ValueError("BasicSR's SwinIR has in_chans = out channels = 3 here")
    if get("num_feat", 64) != 64:
      raise ValueError("BasicSR's SwinIR hard-codes num_feat 64")
    net = {"type": "SwinIR", "upscale": scale, "in_chans": 3, "img_size": lr_size,
           "embed_dim": get("embed_dim", 180), "depths": list(get("depths", (6,) * 6)),
           "num_heads": list(get("num_heads", (6,) * 6)),
           "window_size": get("window_size", 8), "mlp_ratio": float(get("mlp_ratio", 2.0)),
           "qkv_bias": get("qkv_bias", True), "patch_norm": get("patch_norm", True),
           "drop_path_rate": float(get("drop_path_rate", 0.1)),
           "img_range": float(get("img_range", 1.0)), "upsampler": get("upsampler", ""),
           "resi_connection": get("resi_connection", "1conv")}
  else:
    raise ValueError(f"no BasicSR counterpart mapped for jaxsr model {name!r}")
  _check_mapped(fields, _IMPL_FIELDS, "BasicSR")
  return net


def plain_peer(m, scale: int, lr_size: int) -> list:
  """[module, class, kwargs] of spandrel's module for jaxsr model config `m` (the same
  hyper-parameters; the fields the config leaves out take the jaxsr model's defaults)."""
  import dataclasses
  from jaxsr import models
  fields = dict(m.items())
  name = fields.pop("name", None)
  if name not in models.MODELS:
    raise ValueError(f"no jaxsr model {name!r}")
  defaults = {f.name: f.default for f in dataclasses.fields(models.MODELS[name])
              if f.default is not dataclasses.MISSING}
  get = lambda k: fields.pop(k, defaults[k])
  as_list = lambda v: [x for x in v]
  if name == "span":
    if get("deploy"):
      raise ValueError("SPAN deploy=True has no training form")
    peer = ["spandrel.architectures.SPAN.__arch.span", "SPAN",
            {"num_in_ch": get("num_in_ch"), "num_out_ch": get("num_out_ch"),
             "feature_channels": get("feature_channels"), "upscale": scale,
             "norm": get("norm"), "img_range": float(get("img_range")),
             "rgb_mean": as_list(get("rgb_mean"))}]
  elif name == "dat":
    if get("num_feat") != 64:
      raise ValueError("spandrel's DAT hard-codes num_feat 64")
    get("img_size")  # jaxsr recomputes the shift masks per size: torch's is the LR patch
    peer = ["spandrel.architectures.DAT.__arch.DAT", "DAT",
            {"upscale": scale, "in_chans": get("in_chans"), "img_size": lr_size,
             "embed_dim": get("embed_dim"), "split_size": as_list(get("split_size")),
             "depth": as_list(get("depth")), "num_heads": as_list(get("num_heads")),
             "expansion_factor": float(get("expansion_factor")), "qkv_bias": get("qkv_bias"),
             "drop_path_rate": float(get("drop_path_rate")),
             "img_range": float(get("img_range")), "resi_connection": get("resi_connection"),
             "upsampler": get("upsampler")}]
  elif name == "omnisr":
    if get("signed_range"):
      raise ValueError("OmniSR signed_range=True ([-1, 1] inputs) is not mapped")
    peer = ["spandrel.architectures.OmniSR.__arch.OmniSR", "OmniSR",
            {"num_in_ch": get("num_in_ch"), "num_out_ch": get("num_out_ch"),
             "num_feat": get("num_feat"), "block_num": get("block_num"), "pe": get("pe"),
             "window_size": get("window_size"), "res_num": get("res_num"),
             "up_scale": scale, "bias": get("bias")}]
  elif name == "realplksr":
    peer = ["spandrel.architectures.PLKSR.__arch.RealPLKSR", "RealPLKSR",
            {"dim": get("dim"), "n_blocks": get("n_blocks"), "upscaling_factor": scale,
             "kernel_size": get("kernel_size"), "split_ratio": float(get("split_ratio")),
             "use_ea": get("use_ea"), "norm_groups": get("norm_groups"),
             "dropout": float(get("dropout")), "dysample": get("dysample"),
             "layer_norm": get("layer_norm")}]
  elif name == "hat":
    peer = ["spandrel.architectures.HAT.__arch.HAT", "HAT",
            {"upscale": scale, "img_size": lr_size, "in_chans": get("in_chans"),
             "embed_dim": get("embed_dim"), "depths": as_list(get("depths")),
             "num_heads": as_list(get("num_heads")), "window_size": get("window_size"),
             "compress_ratio": get("compress_ratio"), "squeeze_factor": get("squeeze_factor"),
             "conv_scale": float(get("conv_scale")),
             "overlap_ratio": float(get("overlap_ratio")),
             "mlp_ratio": float(get("mlp_ratio")), "qkv_bias": get("qkv_bias"),
             "patch_norm": get("patch_norm"), "drop_path_rate": float(get("drop_path_rate")),
             "img_range": float(get("img_range")), "upsampler": "pixelshuffle",
             "resi_connection": get("resi_connection"), "num_feat": get("num_feat")}]
  elif name == "rcan":
    peer = ["spandrel.architectures.RCAN.__arch.rcan_arch", "RCAN",
            {"scale": scale, "n_resgroups": get("n_resgroups"),
             "n_resblocks": get("n_resblocks"), "n_feats": get("n_feats"),
             "n_colors": get("n_colors"), "rgb_range": float(get("rgb_range")),
             "norm": get("norm"), "kernel_size": get("kernel_size"),
             "reduction": get("reduction"), "act_mode": get("act_mode"),
             "unshuffle_mod": get("unshuffle_mod")}]
  else:
    raise ValueError(f"no spandrel counterpart mapped for jaxsr model {name!r}")
  _check_mapped(fields, _PLAIN_IMPL_FIELDS, "spandrel")
  return peer


def _check_mapped(fields: dict, impl_fields: set, peer: str) -> None:
  """ValueError naming the jaxsr model `fields` left unmapped, other than `impl_fields`."""
  unmapped = sorted(set(fields) - impl_fields)
  if unmapped:
    raise ValueError(f"jaxsr model fields {unmapped} have no {peer} mapping here")


def plain_train_spec(c) -> dict:
  """The plain torch step's settings from jaxsr config `c` (PSNR configs only)."""
  o, loss = c.optim, c.loss
  if loss.perceptual_weight or loss.style_weight or "discriminator" in c:
    raise ValueError("the plain torch step has only the pixel loss")
  if o.warmup_steps:
    raise ValueError("learning-rate warm-up is not mapped for the plain torch step")
  if o.schedule not in ("constant", "multistep", "cosine"):
    raise ValueError(f"schedule {o.schedule!r} is not mapped")
  return {"lr": o.learning_rate, "betas": [o.b1, o.b2], "weight_decay": o.weight_decay,
          "grad_clip_norm": o.grad_clip_norm, "schedule": o.schedule,
          "milestones": list(o.milestones) if o.schedule == "multistep" else [],
          "gamma": o.gamma, "min_lr_ratio": o.min_lr_ratio, "total_iter": c.num_train_steps,
          "pixel": loss.pixel, "pixel_weight": loss.pixel_weight, "ema_decay": c.ema_decay}


def train_opt(c, gan: bool) -> dict:
  """BasicSR `train:` section for jaxsr config `c`."""
  def optim(o):
    if o.weight_decay or o.grad_clip_norm:
      raise ValueError("weight decay / gradient clipping: BasicSR's Adam has no match")
    return {"type": "Adam", "lr": o.learning_rate, "weight_decay": 0,
            "betas": [o.b1, o.b2]}

  o = c.optim
  if o.schedule == "multistep":
    scheduler = {"type": "MultiStepLR", "milestones": list(o.milestones), "gamma": o.gamma}
  elif o.schedule == "cosine":
    scheduler = {"type": "CosineAnnealingRestartLR", "periods": [c.num_train_steps],
                 "restart_weights": [1], "eta_min": o.learning_rate * o.min_lr_ratio}
  else:
    scheduler = {"type": "MultiStepLR", "milestones": [], "gamma": 1.0}
  loss = c.loss
  t = {"ema_decay": c.ema_decay, "optim_g": optim(o), "scheduler": scheduler,
       "total_iter": c.num_train_steps, "warmup_iter": -1, "pixel_opt": None,
       "perceptual_opt": None}
  if loss.pixel_weight:
    t["pixel_opt"] = {"type": {"l1": "L1Loss", "l2": "MSELoss",
                               "charbonnier": "CharbonnierLoss"}[loss.pixel],
                      "loss_weight": loss.pixel_weight, "reduction": "mean"}
  if loss.perceptual_weight or loss.style_weight:
    from jaxsr import config_base
    t["perceptual_opt"] = {
        "type": "PerceptualLoss",
        "layer_weights": config_base.parse_layer_weights(loss.perceptual_layers),
        "vgg_type": "vgg19", "use_input_norm": loss.vgg_input_norm, "range_norm": False,
        "perceptual_weight": loss.perceptual_weight, "style_weight": loss.style_weight,
        "criterion": loss.perceptual_criterion}
  if gan:
    if c.gan.d_steps_per_g_step != 1 or c.gan.d_first:
      raise ValueError("BasicSR updates D once, after G: set d_steps_per_g_step 1, d_first off")
    t["optim_d"] = optim(c.optim_d)
    t["gan_opt"] = {"type": "GANLoss",
                    "gan_type": "vanilla" if loss.gan_type == "ragan" else loss.gan_type,
                    "real_label_val": loss.real_label, "fake_label_val": 0.0,
                    "loss_weight": loss.gan_weight}
    t["net_d_iters"], t["net_d_init_iters"] = 1, c.gan.d_warmup_steps
  return t


def jaxsr_impl_options(text: str) -> list:
  """--jaxsr_impl 'scan_blocks=false,remat=true' -> [(key, value)]: implementation fields of
  the jaxsr model only (no effect on the math; the torch side ignores them)."""
  out = []
  for item in filter(None, (x.strip() for x in text.split(","))):
    key, _, value = item.partition("=")
    if key not in ("scan_blocks", "remat", "attention"):
      raise ValueError(f"--jaxsr_impl: {key!r} is not scan_blocks, remat or attention")
    lowered = value.strip().lower()
    out.append((key, {"true": True, "false": False}.get(lowered, value.strip())))
  return out


def build_row(row: str, args):
  """(jaxsr config, BasicSR opt, row description) with the same settings on both sides."""
  file_name, batch, lr_size, model_type = ROWS[row]
  c = load_config(file_name)
  batch = args.batch or batch
  lr_size = args.lr_size or lr_size
  hr_size = lr_size * c.scale
  c.batch_size, c.data.gt_size, c.dtype = batch, hr_size, args.dtype
  plain = model_type == PLAIN
  if args.tiny and plain:
    for key, value in PLAIN_TINY[row].items():
      setattr(c.model, key, value)
  elif args.tiny:
    import step_timer  # bench/step_timer.py (jaxsr's venv; this script's folder is on sys.path)
    step_timer.shrink(c)
  for key, value in jaxsr_impl_options(args.jaxsr_impl):
    if key not in c.model:
      c.model[key] = value  # a field the config leaves at the model's default
    else:
      setattr(c.model, key, value)
  if args.ema_decay is not None:
    c.ema_decay = args.ema_decay
  elif not plain:
    c.ema_decay = 0.999  # the BasicSR rows' default (issue #10's measurements)
  if plain:
    opt = {"plain": True, "peer": plain_peer(c.model, c.scale, lr_size),
           "train": plain_train_spec(c)}
    wd = c.optim.weight_decay
    desc = {"row": row, "jaxsr_config": f"configs/{file_name}", "basicsr_model": None,
            "torch_step": "plain PyTorch step on spandrel's module (BasicSR has no such arch)",
            "scale": c.scale, "batch": batch, "lr_patch": lr_size, "hr_patch": hr_size,
            "dtype": args.dtype, "tiny": args.tiny, "jaxsr_impl": args.jaxsr_impl or None,
            "losses": f"{c.loss.pixel}*{c.loss.pixel_weight:g}", "ema_decay": c.ema_decay,
            "optimizer": f"{'AdamW' if wd else 'Adam'}(lr={c.optim.learning_rate:g}, betas=("
                         f"{c.optim.b1}, {c.optim.b2}){f', weight_decay={wd:g}' if wd else ''})",
            "network_g": {"module": opt["peer"][0], "class": opt["peer"][1],
                          **opt["peer"][2]}, "network_d": None}
    return c, opt, desc
  gan = "discriminator" in c
  if ("degradation" in c) != (model_type == "RealESRGANModel"):
    raise ValueError(f"{row}: BasicSR's {model_type} and a "
                     f"{'real-world' if 'degradation' in c else 'bicubic'} jaxsr config")
  if gan:
    if model_type not in GAN_MODELS:
      raise ValueError(f"{row}: {model_type} trains no discriminator")
    gan_type, d_name = GAN_MODELS[model_type]
    if c.loss.gan_type != gan_type:
      raise ValueError(f"{row}: BasicSR's {model_type} takes the {gan_type} GAN loss, jaxsr "
                       f"config has {c.loss.gan_type}")
    if args.perceptual == "off":
      c.loss.perceptual_weight = c.loss.style_weight = 0.0
    if c.discriminator.name != d_name:
      raise ValueError(f"{row}: discriminator {c.discriminator.name} not mapped")
    if d_name == "vgg_style":
      if hr_size not in (128, 256):
        raise ValueError(f"{row}: the VGG-style D takes HR 128 or 256, not {hr_size} "
                         f"(--lr_size={128 // c.scale} or {256 // c.scale})")
      c.discriminator.input_size = hr_size
    elif hr_size % 8:
      raise ValueError(f"{row}: the U-Net D takes an HR side divisible by 8, not {hr_size}")
  opt = {"name": f"compare_basicsr_{row}", "model_type": model_type, "scale": c.scale,
         "num_gpu": 0, "dist": False, "rank": 0, "world_size": 1, "is_train": True,
         "manual_seed": 0, "network_g": network_g(c.model, c.scale, lr_size),
         "train": train_opt(c, gan)}
  if gan and d_name == "vgg_style":
    opt["network_d"] = {"type": "VGGStyleDiscriminator", "num_in_ch": 3,
                        "num_feat": c.discriminator.get("num_feat", 64),
                        "input_size": hr_size}
  elif gan:
    opt["network_d"] = {"type": "UNetDiscriminatorSN",  # realesrgan's own (the yml's type)
                        "num_in_ch": c.discriminator.get("num_in_ch", 3),
                        "num_feat": c.discriminator.get("num_feat", 64),
                        "skip_connection": c.discriminator.get("skip_connection", True)}
  if "degradation" in c:
    # RealESRGANModel's own options (train_realesrgan_x4plus.yml): which targets are
    # USM-sharpened, the pool size; feed_data takes the paired path (lq, gt, gt_usm = USM(gt)):
    # the second-order degradations are timed by bench/degrade.py (the suite adds the two).
    d = c.degradation
    opt.update(l1_gt_usm=d.l1_gt_usm, percep_gt_usm=d.percep_gt_usm, gan_gt_usm=d.gan_gt_usm,
               queue_size=d.queue_size, high_order_degradation=False)
    # jaxsr's side: the config's train step on ready pairs, as optimize_parameters (its
    # degradation stage is bench/realworld_step.py's pairs_s; USM targets cost no step time).
    from jaxsr import config_base
    del c.degradation
    for key in set(c.data) - set(config_base.gan_config().data):  # the host's 400 crops
      del c.data[key]
  loss = c.loss
  terms = [f"{loss.pixel}*{loss.pixel_weight:g}"] if loss.pixel_weight else []
  if loss.perceptual_weight:
    terms.append(f"vgg19[{loss.perceptual_layers}] {loss.perceptual_criterion}"
                 f"*{loss.perceptual_weight:g}")
  if loss.style_weight:
    terms.append(f"style*{loss.style_weight:g}")
  if gan:
    terms.append(f"{loss.gan_type}*{loss.gan_weight:g}")
  desc = {"row": row, "jaxsr_config": f"configs/{file_name}", "basicsr_model": model_type,
          "scale": c.scale, "batch": batch, "lr_patch": lr_size, "hr_patch": hr_size,
          "dtype": args.dtype, "tiny": args.tiny, "jaxsr_impl": args.jaxsr_impl or None,
          "losses": " + ".join(terms), "ema_decay": c.ema_decay,
          "optimizer": f"Adam(lr={c.optim.learning_rate:g}, betas=({c.optim.b1}, "
                       f"{c.optim.b2}))", "network_g": opt["network_g"],
          "network_d": opt.get("network_d")}
  return c, opt, desc


def jaxsr_params(c) -> dict:
  import jax
  from jaxsr import builders
  from jaxsr.models import count_params
  comps = builders.components_from_config(c)
  key = jax.random.key(0)
  g = jax.eval_shape(builders.init_variables_fn(comps.model, c), key)
  out = {"params_g": count_params(g.get("params", {})), "params_d": None}
  if comps.discriminator is not None:
    d = jax.eval_shape(builders.init_discriminator_fn(comps.discriminator, c), key)
    out["params_d"] = count_params(d.get("params", {}))
  return out


def run_jaxsr(c, args) -> dict:
  if c.model.name == "swinir":
    try:
      from jaxsr import models
      available = "swinir" in models.MODELS
    except ImportError as e:
      raise RuntimeError(f"jaxsr's SwinIR does not import (jaxsr/models/swinir.py): {e}")
    if not available:
      raise RuntimeError("jaxsr has no 'swinir' model yet (jaxsr/models/swinir.py, registered "
                         "in jaxsr.models.MODELS)")
  import step_timer  # bench/step_timer.py (this script's folder is on sys.path).
  from jaxsr.models import vgg
  with tempfile.TemporaryDirectory(prefix="compare_basicsr_vgg_") as tmp:
    if c.loss.perceptual_weight or c.loss.style_weight:
      c.loss.vgg_weights = os.path.join(tmp, vgg.KERAS_VGG19_FILE)
      step_timer.write_random_vgg19_h5(c.loss.vgg_weights)
    result = step_timer.time_train_step(c, args.warmup, args.steps)
  result.update(jaxsr_params(c))
  return result


def jax_versions() -> dict:
  import flax
  import jax
  import jaxlib
  import numpy as np
  import optax
  import jaxsr
  return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "flax": flax.__version__,
          "optax": optax.__version__, "jaxsr": jaxsr.__version__, "numpy": np.__version__,
          "python": platform.python_version()}


def main() -> None:
  parser = peer_process.row_parser(__doc__, ROWS)
  parser.add_argument("--batch", type=int, default=0, help="batch of every row (0: row's)")
  parser.add_argument("--lr_size", type=int, default=0,
                      help="LR patch side of every row (0: row's); HR = scale * LR")
  parser.add_argument("--warmup", type=int, default=2, help="untimed steps (after compile)")
  parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
  cores = cpu_info()["cores"]
  parser.add_argument("--threads", type=int, default=cores,
                      help="torch.set_num_threads (default: all cores); XLA uses all cores")
  parser.add_argument("--ema_decay", type=float, default=None,
                      help="EMA decay on both sides (0: off on both; default: 0.999 for the "
                           "BasicSR rows, the config's for the plain rows)")
  parser.add_argument("--perceptual", choices=("on", "off"), default="on",
                      help="esrgan row: the VGG19 perceptual loss on both sides")
  parser.add_argument("--torch_python", default=sys.executable,
                      help="Python with torch, torchvision, basicsr 1.4.2 (see docstring)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                      help="jaxsr's computation dtype (config.dtype)")
  parser.add_argument("--torch_device", choices=("cpu", "cuda"), default="cpu")
  parser.add_argument("--torch_mode", default="float32",
                      choices=("float32", "float32_tf32", "bf16_autocast", "best"),
                      help="BasicSR as it ships (float32; float32_tf32 also lets matmuls use "
                           "TF32), under torch.autocast bf16, or at its best: channels_last, "
                           "autocast bf16 and torch.compile of each network's forward")
  parser.add_argument("--tiny", action="store_true",
                      help="a few narrow blocks of each row's architecture (smoke runs)")
  parser.add_argument("--jaxsr_impl", default="",
                      help="jaxsr model implementation fields over the config, e.g. "
                           "'scan_blocks=false' (scan_blocks, remat, attention only)")
  side = parser.add_mutually_exclusive_group()
  side.add_argument("--torch_only", action="store_true", help="time only BasicSR")
  side.add_argument("--jax_only", action="store_true", help="time only jaxsr")
  args = parser.parse_args()
  rows = peer_process.selected_rows(parser, args.rows, ROWS)
  if args.steps < 1 or args.warmup < 0:
    parser.error("--steps >= 1, --warmup >= 0")
  logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

  cpu = cpu_info()
  try:
    jaxv = jax_versions()
  except Exception as e:  # pylint: disable=broad-except
    jaxv = {"error": error_text(e)}
  for row in rows:
    out = {"bench": "compare_basicsr"}
    notes = ["XLA's CPU backend uses every core (jax_threads = cores); --threads sets torch "
             "only", "one random batch, reused each step; compile time excluded"]
    try:
      c, opt, desc = build_row(row, args)
    except Exception as e:  # pylint: disable=broad-except
      print(json.dumps({**out, "row": row, "error": error_text(e)}), flush=True)
      continue
    out.update(desc)
    if c.model.name == "swinir":
      notes.append(f"drop_path_rate {opt['network_g']['drop_path_rate']} on both sides; "
                   f"BasicSR img_size = LR patch {desc['lr_patch']}")
    if opt.get("plain"):
      notes.append("torch side: a plain PyTorch step (Adam(W), pixel loss, MultiStepLR / "
                   "cosine, BasicSR-style EMA) on spandrel's module in train mode, its input "
                   "copied each step; the same optimizer, schedule, loss and EMA as the jaxsr "
                   "config")
      if "drop_path_rate" in opt["peer"][2]:
        notes.append(f"drop_path_rate {opt['peer'][2]['drop_path_rate']} on both sides")
    if opt.get("model_type") == "RealESRGANModel":
      notes.append("both sides time the GAN step on ready pairs: RealESRGANModel.feed_data's "
                   "paired path (lq, gt, USM of gt) runs untimed before each "
                   "optimize_parameters; the second-order degradations are bench/degrade.py's "
                   "(bench/gpu_suite.py adds its feed_data row), jaxsr's real-world step with "
                   "them bench/realworld_step.py")
    if row in ("esrgan", "realesrgan"):
      if c.loss.perceptual_weight:
        notes.append("perceptual VGG19 loss on both sides with random weights (no download; "
                     "timing does not depend on them): jaxsr a random Keras .h5, BasicSR a "
                     "random torchvision vgg19 state dict at its VGG_PRETRAIN_PATH")
      else:
        notes.append("perceptual loss off on both sides (--perceptual=off)")
    torch_res = jax_res = None
    if not args.jax_only:
      spec = {"opt": copy.deepcopy(opt), "batch": desc["batch"], "lr_size": desc["lr_patch"],
              "hr_size": desc["hr_patch"], "warmup": args.warmup, "steps": args.steps,
              "threads": args.threads, "seed": args.seed, "device": args.torch_device,
              "mode": args.torch_mode}
      if opt.get("plain"):  # plain_torch_step reads these
        spec.update(plain=True, peer=opt["peer"], train=opt["train"])
      try:
        torch_res = run_torch(spec, args.torch_python)
        out["torch_median_s"] = torch_res["median_s"]
      except Exception as e:  # pylint: disable=broad-except
        out["torch_error"] = error_text(e)
    if not args.torch_only:
      try:
        jax_res = run_jaxsr(c, args)
        out["jaxsr_median_s"] = jax_res["median_s"]
      except Exception as e:  # pylint: disable=broad-except
        traceback.print_exc(file=sys.stderr)
        out["jaxsr_error"] = error_text(e)
    if torch_res and jax_res:
      out["ratio"] = round(torch_res["median_s"] / jax_res["median_s"], 3)
    if torch_res:
      out.update({"torch_times_s": torch_res["times_s"], "torch_step": torch_res["step_fn"],
                  "torch_model_class": torch_res["model_class"],
                  "torch_params_g": torch_res["params_g"],
                  "torch_params_d": torch_res["params_d"], "torch_ema": torch_res["ema"],
                  "torch_threads": torch_res["threads"],
                  "torch_interop_threads": torch_res["interop_threads"],
                  **{f"torch_{k}": torch_res[k] for k in ("device", "mode", "gpu",
                                                          "max_mem_gb")},
                  "torch_versions": torch_res["versions"]})
    if jax_res:
      out.update({"jaxsr_params_g": jax_res["params_g"], "jaxsr_params_d": jax_res["params_d"],
                  **{f"jaxsr_{k}": jax_res[k] for k in (
                      "gflop_per_step", "device", "lower_s", "compile_s",
                      "tflop_s_per_device", "mfu")}})
      if torch_res and (jax_res["params_g"], jax_res["params_d"]) != (
          torch_res["params_g"], torch_res["params_d"]):
        notes.append("parameter counts differ between the sides")
    out.update({"jax_threads": cpu["cores"], "threads_flag": args.threads,
                "warmup": args.warmup, "steps": args.steps, **cpu,
                "jax_versions": jaxv, "note": "; ".join(notes)})
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
  if len(sys.argv) == 4 and sys.argv[1] == "--_torch_child":
    torch_child(sys.argv[2], sys.argv[3])
  else:
    main()
