"""Degraded training pairs per second: jaxsr's compiled degradations vs Real-ESRGAN's own code
(on the CPU, or its feed_data on the GPU with --torch_device=cuda); prints one JSON line per implementation (JSON on stdout).

  # jaxsr (the project venv; imports neither torch nor TensorFlow):
  python bench/degrade.py --impl=jaxsr                  # batch 12, HR crop 400, x4 (LR 100)
  python bench/degrade.py --impl=jaxsr --jaxsr_fn=pairs --stages
  # Real-ESRGAN (its own venv; basicsr after torch, without its dependencies):
  python -m venv /tmp/torchvenv
  /tmp/torchvenv/bin/pip install torch numpy scipy opencv-python-headless pillow
  /tmp/torchvenv/bin/pip install --no-deps --no-build-isolation basicsr==1.4.2 realesrgan==0.3.0
  /tmp/torchvenv/bin/python bench/degrade.py --impl=torch
  # Both, one after the other on the same cores, then their ratio (issue #9's goal: >= 2x):
  python bench/degrade.py --impl=both --torch_python=/tmp/torchvenv/bin/python

What is timed, per batch (median of --repeats after --warmup; the input is one random uint8
batch, made once; the degradations' cost does not depend on the pixels):
* jaxsr, --jaxsr_fn=degrade: `degrader.apply(degrader.sample(keys), hr / 255)` in one jit, keys
  folded from the iteration (new draws each batch), HR uint8 [B, P, P, 3] -> LR [B, P/s, P/s, 3].
  --jaxsr_fn=pairs: `degradations.pairs.make_pair_fn` (the trainer's: degradation, crop to
  gt_size, training-pair pool, USM of the crop), the pool donated and full before timing.
  Compilation is reported apart (compile_s).
* torch: `RealESRGANDataset.__getitem__` for each of the B samples (the kernel1 / kernel2 /
  sinc_kernel draws, crop-or-pad to 400, img2tensor), the DataLoader's collate, then
  `RealESRGANModel.feed_data` (second-order degradation of the 400 crop, crop to gt_size, pool,
  USM), i.e. `train_realesrgan_x4plus.yml`'s work up to the network. File reading and decoding
  are skipped (a stand-in file client returns the image; `imfrombytes` is the real one's
  `astype(float32) / 255`) and augmentation is off (use_hflip / use_rot False). Dataset and
  model are the packages' own files, imported by path (`tests/data/make_degradation_golden.py`'s loader and its
  torchvision stand-in), with stand-ins for what their imports pull in but this run never calls.
  `feed_data` and `_dequeue_and_enqueue` run unmodified on a light stand-in `self` (opt, device
  cpu, USMSharp, DiffJPEG, queue_size) instead of a constructed model (which needs CUDA,
  networks, optimizers); `torch.Tensor.cuda` is patched to return the tensor itself for the run
  (the pool allocates with `.cuda()`), and the model module's `filter2D` gets a contiguous input
  (on today's CPU torch, F.pad keeps DiffJPEG's channels-last output channels-last and
  filter2D's `.view` raises). The pool is full before timing. The dataset hard-codes its 400
  crop, so the torch side needs --crop=400.
--torch_device=cuda (a GPU host, bench/gpu_suite.py): the stand-in model, USM and DiffJPEG are
on the GPU, `.cuda()` is left alone, and only `feed_data` is timed, on one collated batch (in
training the dataset kernels run in DataLoader workers beside the GPU), each batch synchronized.
Fair-share notes: Real-ESRGAN draws the resize / noise / order choices once per batch while
jaxsr draws them per sample and computes every branch on the largest canvas, so jaxsr does more
arithmetic per batch; Real-ESRGAN's data-loader workers run beside the GPU, here everything
shares the same cores (torch threads = --threads, default all cores; XLA uses all cores).
"""

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# options/train_realesrgan_x4plus.yml (realesrgan 0.3.0): the model's options ...
REALESRGAN_OPT = {
    "scale": 4, "l1_gt_usm": True, "percep_gt_usm": True, "gan_gt_usm": False,
    "resize_prob": [0.2, 0.7, 0.1], "resize_range": [0.15, 1.5], "gaussian_noise_prob": 0.5,
    "noise_range": [1, 30], "poisson_scale_range": [0.05, 3], "gray_noise_prob": 0.4,
    "jpeg_range": [30, 95], "second_blur_prob": 0.8, "resize_prob2": [0.3, 0.4, 0.3],
    "resize_range2": [0.3, 1.2], "gaussian_noise_prob2": 0.5, "noise_range2": [1, 25],
    "poisson_scale_range2": [0.05, 2.5], "gray_noise_prob2": 0.4, "jpeg_range2": [30, 95],
    "gt_size": 256, "queue_size": 180,
}
KERNEL_TYPES = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
                "plateau_aniso"]
# ... and its datasets.train options (io_backend / paths are set by `_torch_setup`).
REALESRGAN_DATASET_OPT = {
    "blur_kernel_size": 21, "kernel_list": KERNEL_TYPES,
    "kernel_prob": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03], "sinc_prob": 0.1, "blur_sigma": [0.2, 3],
    "betag_range": [0.5, 4], "betap_range": [1, 2],
    "blur_kernel_size2": 21, "kernel_list2": KERNEL_TYPES,
    "kernel_prob2": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03], "sinc_prob2": 0.1,
    "blur_sigma2": [0.2, 1.5], "betag_range2": [0.5, 4], "betap_range2": [1, 2],
    "final_sinc_prob": 0.8, "gt_size": 256,
    "use_hflip": False, "use_rot": False,  # The yml flips (use_hflip True); not timed here.
}


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--impl", choices=("jaxsr", "torch", "both"), default="jaxsr",
                 help="both: each in its own interpreter (--jaxsr_python, --torch_python).")
  p.add_argument("--batch", type=int, default=12, help="Samples per batch.")
  p.add_argument("--crop", type=int, default=400, help="HR crop side (Real-ESRGAN's 400).")
  p.add_argument("--scale", type=int, default=4)
  p.add_argument("--gt_size", type=int, default=256, help="Training-pair GT side (pairs, torch).")
  p.add_argument("--queue_size", type=int, default=180, help="Pool size (pairs, torch).")
  p.add_argument("--repeats", type=int, default=10, help="Timed batches.")
  p.add_argument("--warmup", type=int, default=2,
                 help="Untimed batches (after compilation and after the pool is full).")
  p.add_argument("--jaxsr_fn", choices=("degrade", "pairs"), default="degrade",
                 help="degrade: HR -> LR; pairs: the trainer's pair function (crop, pool, USM).")
  p.add_argument("--stages", action="store_true",
                 help="jaxsr: also time sample / USM / each stage's apply, jitted separately.")
  p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores).")
  p.add_argument("--jaxsr_python", default=sys.executable, help="Interpreter for --impl=both.")
  p.add_argument("--torch_python", default=sys.executable, help="Interpreter for --impl=both.")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--torch_device", choices=("cpu", "cuda"), default="cpu",
                 help="torch: cuda times Real-ESRGAN's feed_data on the GPU (as it trains)")
  return p.parse_args(argv)


# --- Common --------------------------------------------------------------------------------------


def host_info() -> dict:
  model = "unknown"
  with open("/proc/cpuinfo") as f:
    for line in f:
      if line.startswith("model name"):
        model = line.split(":", 1)[1].strip()
        break
  return {"cpu": model, "cpu_count": os.cpu_count(), "cpu_affinity": len(os.sched_getaffinity(0)),
          "python": platform.python_version()}


def versions(*packages) -> dict:
  return {name: importlib.metadata.version(name) for name in packages}


def time_batches(run, warmup: int, repeats: int) -> dict:
  """Runs `run()` (one batch, returns when done) warmup + repeats times; median seconds etc."""
  for _ in range(warmup):
    run()
  load_before = os.getloadavg()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  load_after = os.getloadavg()
  return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
          "max_s": round(max(times), 4), "repeats": repeats, "warmup": warmup,
          "loadavg_before": [round(v, 2) for v in load_before],
          "loadavg_after": [round(v, 2) for v in load_after]}


def random_hr(args) -> np.ndarray:
  """uint8 [B, crop, crop, 3] RGB, the same batch for both implementations."""
  rng = np.random.default_rng(args.seed)
  return rng.integers(0, 256, (args.batch, args.crop, args.crop, 3), dtype=np.uint8)


def report(impl: str, args, timing: dict, **extra) -> dict:
  return {"impl": impl, "batch": args.batch, "crop": args.crop, "scale": args.scale,
          "lr": args.crop // args.scale, **timing,
          "pairs_per_s": round(args.batch / timing["median_s"], 2), **extra, **host_info()}


# --- jaxsr ---------------------------------------------------------------------------------------


def jaxsr_step(fn: str, args):
  """(step, state): the jaxsr work of one batch as `step(state, hr_uint8, i) -> (state, out)`
  (a jitted function; i an int32 iteration from which the batch's keys are folded) and its first
  state. The one place to change when the trainer's pair function changes."""
  import jax
  import jax.numpy as jnp

  from jaxsr import config_base
  from jaxsr.degradations import config as degradation_config
  from jaxsr.degradations import pairs
  from jaxsr.degradations import pipeline

  if fn == "degrade":
    degrader = pipeline.make_degrader(degradation_config.default_config(), crop_size=args.crop,
                                      scale=args.scale)

    def step(state, hr, i):
      base = jax.random.fold_in(jax.random.key(args.seed), i)
      keys = jax.vmap(lambda b: jax.random.fold_in(base, b))(jnp.arange(hr.shape[0]))
      return state, degrader.apply(degrader.sample(keys), hr.astype(jnp.float32) / 255.0)

    return jax.jit(step), ()
  config = config_base.realworld_config()
  config.seed, config.scale, config.batch_size = args.seed, args.scale, args.batch
  config.data.crop_pad_size, config.data.gt_size = args.crop, args.gt_size
  config.degradation.queue_size = args.queue_size
  pool = pairs.init_pool(args.queue_size, args.gt_size, args.scale)
  return jax.jit(pairs.make_pair_fn(config), donate_argnums=0), pool


def jaxsr_stage_times(args, hr_uint8) -> dict:
  """Median seconds of degrader.sample, USM and each `Stage.apply`, each jitted on its own, at
  the bench's batch / crop (the stages' inputs are the previous stages' outputs)."""
  import jax
  import jax.numpy as jnp

  from jaxsr.degradations import config as degradation_config
  from jaxsr.degradations import filters
  from jaxsr.degradations import pipeline

  d = degradation_config.default_config()
  degrader = pipeline.make_degrader(d, crop_size=args.crop, scale=args.scale)
  keys = jax.vmap(lambda b: jax.random.fold_in(jax.random.key(args.seed), b))(
      jnp.arange(args.batch))
  hr = jnp.asarray(hr_uint8, jnp.float32) / 255.0
  out = {}

  def measure(name, fn, *inputs):
    compiled = jax.jit(fn).lower(*inputs).compile()
    result = time_batches(lambda: jax.block_until_ready(compiled(*inputs)), 1,
                          max(3, args.repeats // 2))
    out[name] = result["median_s"]
    return compiled(*inputs)

  params = measure("sample", degrader.sample, keys)
  sharp = measure("usm", lambda x: filters.usm_sharp(x, d.usm_weight, d.usm_radius,
                                                     d.usm_threshold), hr)
  canvas = pipeline.Canvas(sharp, jnp.full((args.batch, 2), args.crop, jnp.int32))
  for stage in degrader.stages:
    canvas = measure(stage.name, stage.apply, params[stage.name], canvas)
  return out


def run_jaxsr(args) -> list:
  import jax
  import jax.numpy as jnp

  import jaxsr

  step, state = jaxsr_step(args.jaxsr_fn, args)
  hr_host = random_hr(args)
  hr = jax.device_put(hr_host)
  start = time.perf_counter()
  compiled = step.lower(state, hr, jnp.int32(0)).compile()
  compile_s = time.perf_counter() - start
  holder = {"state": state, "i": 0}

  def run():
    holder["state"], out = compiled(holder["state"], hr, jnp.int32(holder["i"]))
    holder["i"] += 1
    jax.block_until_ready((holder["state"], out))

  fill = args.queue_size // args.batch if args.jaxsr_fn == "pairs" and args.queue_size else 0
  timing = time_batches(run, fill + args.warmup, args.repeats)
  lines = [report("jaxsr", args, timing, fn=args.jaxsr_fn, compile_s=round(compile_s, 2),
                  device=str(jax.devices()[0].device_kind),
                  versions={**versions("jax", "jaxlib", "numpy"), "jaxsr": jaxsr.__version__})]
  if args.stages:
    lines.append({"impl": "jaxsr_stages", "batch": args.batch, "crop": args.crop,
                  "scale": args.scale, "median_s": jaxsr_stage_times(args, hr_host),
                  "loadavg": [round(v, 2) for v in os.getloadavg()]})
  assert "tensorflow" not in sys.modules, "the benchmark must not import TensorFlow"
  return lines


# --- Real-ESRGAN on CPU torch --------------------------------------------------------------------


class _MemoryClient:
  """Stand-in for basicsr's FileClient: `get(path, key)` returns the already decoded image."""

  def __init__(self, backend, images):
    del backend
    self.images = images

  def get(self, path, client_key="default"):
    del client_key
    return self.images[path]


def _decoded(content, flag="color", float32=False):
  """basicsr.utils.imfrombytes after its cv2.imdecode (here `content` is the decoded image)."""
  del flag
  return content.astype(np.float32) / 255. if float32 else content


class _Registry:
  """Stand-in for basicsr's registries: `register()` returns the class unchanged."""

  def register(self, obj=None):
    return (lambda o: o) if obj is None else obj


def load_realesrgan():
  """(RealESRGANDataset, RealESRGANModel, USMSharp, DiffJPEG) from the packages' own files.

  Imported by path without running `basicsr/__init__.py` or `realesrgan/__init__.py` (torchvision,
  lmdb, the archs, ...): the modules they import from basicsr are registered first, the real
  ones where this run calls them (degradations, transforms, img_process_util, diffjpeg, img_util)
  and stand-ins for the rest (FileClient, imfrombytes, registries, SRGANModel as the base class).
  """
  sys.path.insert(0, os.path.join(ROOT, "tests", "data"))
  import make_degradation_golden as golden
  degradations, img_process_util, diffjpeg = golden.load_modules()  # + torchvision stand-in.
  import_by_path = golden._import_by_path
  sys.modules["torchvision.utils"] = types.ModuleType("torchvision.utils")
  sys.modules["torchvision.utils"].make_grid = None  # img_util imports it; never called here.
  img_util = import_by_path("basicsr_img_util", "basicsr", "utils/img_util.py")
  transforms = import_by_path("basicsr_transforms", "basicsr", "data/transforms.py")

  def package(name, **attrs):
    module = types.ModuleType(name)
    module.__path__ = []
    module.__dict__.update(attrs)
    return module

  registry = _Registry()
  sys.modules.update({
      "basicsr": package("basicsr"),
      "basicsr.data": package("basicsr.data"),
      "basicsr.data.degradations": degradations,
      "basicsr.data.transforms": transforms,
      "basicsr.utils": package("basicsr.utils", DiffJPEG=diffjpeg.DiffJPEG,
                               USMSharp=img_process_util.USMSharp, FileClient=_MemoryClient,
                               imfrombytes=_decoded, img2tensor=img_util.img2tensor,
                               get_root_logger=None),
      "basicsr.utils.img_process_util": img_process_util,
      "basicsr.utils.registry": package("basicsr.utils.registry", DATASET_REGISTRY=registry,
                                        MODEL_REGISTRY=registry),
      "basicsr.models": package("basicsr.models"),
      "basicsr.models.srgan_model": package("basicsr.models.srgan_model", SRGANModel=object),
  })
  dataset = import_by_path("realesrgan_dataset", "realesrgan", "data/realesrgan_dataset.py")
  model = import_by_path("realesrgan_model", "realesrgan", "models/realesrgan_model.py")
  # filter2D `.view`s its padded input as NCHW-contiguous; DiffJPEG returns a permuted
  # (channels-last) tensor, which F.pad on today's CPU torch keeps channels-last, so the
  # second blur would raise. Contiguous input = the layout F.pad gave when this code was written.
  model.filter2D = lambda img, kernel: img_process_util.filter2D(img.contiguous(), kernel)
  return (dataset.RealESRGANDataset, model.RealESRGANModel, img_process_util.USMSharp,
          diffjpeg.DiffJPEG)


@contextlib.contextmanager
def cuda_is_identity():
  """`torch.Tensor.cuda` returns the tensor itself (the pool allocates with `.cuda()`)."""
  import torch
  original = torch.Tensor.cuda
  torch.Tensor.cuda = lambda self, *args, **kwargs: self
  try:
    yield
  finally:
    torch.Tensor.cuda = original


def run_torch(args) -> list:
  import random

  import torch
  from torch.utils.data import default_collate

  if args.crop != 400:
    raise SystemExit("--impl=torch needs --crop=400 (RealESRGANDataset's hard-coded crop_pad_size)")
  dataset_cls, model_cls, usm_cls, jpeg_cls = load_realesrgan()
  torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
  random.seed(args.seed)
  np.random.seed(args.seed)
  torch.manual_seed(args.seed)

  class StandInModel:
    """What `feed_data` / `_dequeue_and_enqueue` read from a RealESRGANModel, on the CPU."""
    feed_data = model_cls.feed_data
    _dequeue_and_enqueue = model_cls._dequeue_and_enqueue

    def __init__(self, opt):
      self.opt, self.device, self.is_train = opt, torch.device(args.torch_device), True
      self.usm_sharpener = usm_cls().to(self.device)
      self.jpeger = jpeg_cls(differentiable=False).to(self.device)
      self.queue_size = opt.get("queue_size", 180)

  hr = random_hr(args)
  paths = [f"gt_{i}.png" for i in range(args.batch)]
  with tempfile.TemporaryDirectory() as tmp:
    meta_info = os.path.join(tmp, "meta_info.txt")
    with open(meta_info, "w") as f:
      f.write("".join(p + "\n" for p in paths))
    images = {os.path.join(tmp, p): np.ascontiguousarray(hr[i, :, :, ::-1])  # BGR, as cv2 reads.
              for i, p in enumerate(paths)}
    dataset = dataset_cls({**REALESRGAN_DATASET_OPT, "dataroot_gt": tmp, "meta_info": meta_info,
                           "io_backend": {"type": "memory", "images": images}})
  opt = {**REALESRGAN_OPT, "scale": args.scale, "gt_size": args.gt_size,
         "queue_size": args.queue_size}
  model = StandInModel(opt)
  on_gpu = args.torch_device == "cuda"
  # On the GPU, as Real-ESRGAN trains: the dataset's kernels run in DataLoader workers beside
  # the step, so only feed_data (the degradations, on the GPU) is timed, on one collated batch.
  first = default_collate([dataset[i] for i in range(args.batch)]) if on_gpu else None

  def run():
    model.feed_data(first if on_gpu else default_collate([dataset[i] for i in range(args.batch)]))
    if on_gpu:
      torch.cuda.synchronize()

  with contextlib.nullcontext() if on_gpu else cuda_is_identity():
    fill = args.queue_size // args.batch
    timing = time_batches(run, fill + args.warmup, args.repeats)
  assert model.queue_ptr == model.queue_size and tuple(model.lq.shape) == (
      args.batch, 3, args.gt_size // args.scale, args.gt_size // args.scale), model.lq.shape
  return [report("torch", args, timing, torch_device=args.torch_device,
                 timed="feed_data on the GPU" if on_gpu else "dataset kernels + feed_data",
                 torch_threads=torch.get_num_threads(),
                 torch_interop_threads=torch.get_num_interop_threads(),
                 versions=versions("torch", "numpy", "scipy", "opencv-python-headless",
                                   "basicsr", "realesrgan"))]


# --- Main ----------------------------------------------------------------------------------------


def run_both(args) -> list:
  """Each implementation in its own interpreter, one after the other; then their ratio."""
  lines = []
  for impl, python in (("jaxsr", args.jaxsr_python), ("torch", args.torch_python)):
    done = subprocess.run([python, os.path.abspath(__file__), *sys.argv[1:], f"--impl={impl}"],
                          stdout=subprocess.PIPE, text=True, check=True)
    lines += [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
  rates = {line["impl"]: line["pairs_per_s"] for line in lines if "pairs_per_s" in line}
  speedup = rates["jaxsr"] / rates["torch"]
  lines.append({"impl": "ratio", "jaxsr_fn": args.jaxsr_fn, "jaxsr_pairs_per_s": rates["jaxsr"],
                "torch_pairs_per_s": rates["torch"], "speedup": round(speedup, 2), "goal": 2.0,
                "goal_met": speedup >= 2.0})
  return lines


def main():
  args = parse_args()
  run = {"jaxsr": run_jaxsr, "torch": run_torch, "both": run_both}[args.impl]
  for line in run(args):
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
  main()
