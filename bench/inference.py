"""Inference latency of one image (batch 1, float32) in jaxsr, ONNX Runtime and PyTorch, with
the same weights, in one run; prints one JSON line per row (stdout; logs go to stderr).

What is measured, per row: the median (`<side>_median_s`; the fastest: `<side>_min_s`)
wall-clock seconds of `--runs` forward passes of an LR image `[1, S, S, 3]` (S = --size,
default 256; x4 -> 1024x1024) after `--warmup` untimed passes (compilation / session creation
excluded), and the megapixels per second of the OUTPUT image (`(4S)^2 / 1e6 / median_s`).
Three sides:

  jaxsr   `jax.jit` of `model.apply(variables, x)` (`builders.make_apply_fn`), the model from
          `jaxsr.models.MODELS[name](scale=4, **opts)`; the input and variables are on the
          device before timing; each pass ends with `block_until_ready`.
  onnx    ONNX Runtime, CPUExecutionProvider, `intra_op_num_threads` = --threads,
          `inter_op_num_threads` 1, graph optimizations ORT_ENABLE_ALL, on the model written by
          jaxsr's own exporter `jaxsr.export.onnx_export.to_onnx_model(model, variables,
          multiple=k)` (input `[B, H, W, 3]` NHWC float32, output `[B, 4H, 4W, 3]`; k =
          `jaxsr.inference.input_multiple(model)`, e.g. the window of SwinIR / HAT / OmniSR,
          when S is a multiple of it, else 1; the row's `onnx_input_multiple`). When the
          exporter is missing or fails, the row carries its error in `onnx_error`.
  torch   the peer's own architecture in eval mode under `torch.inference_mode()`,
          `torch.set_num_threads(--threads)`, NCHW float32, in a subprocess of --torch_python.

Rows (--rows, default all):
  msrresnet  jaxsr `MSRResNet` x4, 64 feat, 16 blocks  vs BasicSR
             `basicsr.archs.srresnet_arch.MSRResNet(3, 3, 64, 16, upscale=4)`.
  rrdbnet    jaxsr `RRDBNet` x4, 64 feat, 23 blocks, grow 32  vs BasicSR
             `basicsr.archs.rrdbnet_arch.RRDBNet(3, 3, scale=4, num_feat=64, num_block=23,
             num_grow_ch=32)` (ESRGAN / RealESRGAN_x4plus).
  srvgg      jaxsr `SRVGGNetCompact` x4, 64 feat, 32 conv, prelu (realesr-general-x4v3)  vs
             Real-ESRGAN's `realesrgan.archs.srvgg_arch.SRVGGNetCompact(3, 3, 64, 32, 4,
             'prelu')`. If `realesrgan` does not import in --torch_python, the torch process
             imports the `realesrgan` package installed in another venv (--realesrgan_dir, or
             the first `/tmp/*/lib/python3*/site-packages/realesrgan` found) by path, on top of
             --torch_python's own torch / basicsr; the row's `torch_arch_file` names the file.

  swinir     jaxsr `SwinIR` x4 (SwinIR-M: embed 180, 6x6 blocks, window 8, 'pixelshuffle')
             vs BasicSR `basicsr.archs.swinir_arch.SwinIR` with the same hyper-parameters.
The families BasicSR lacks run against spandrel 0.4.2's own modules (the code spandrel loads
community weights into; `spandrel.architectures.<F>.__arch.<file>.<class>`, imported directly),
with the released x4 models' hyper-parameters:
  span       jaxsr `SPAN` 48 ch, norm (spanx4_ch48 / 4xNomos SPAN)  vs spandrel's `SPAN` (eval
             mode merges each Conv3XC's branches at every forward, as spandrel runs it).
  dat        jaxsr `DAT` (DAT of the paper: embed 180, depth and heads 6x6, split (8, 32),
             expansion 4, '1conv', 'pixelshuffle')  vs spandrel's `DAT`.
  omnisr     jaxsr `OmniSR` (64 feat, 5 OSAGs of 1 block, window 8, pe, bias)  vs spandrel's
             `OmniSR`.
  realplksr  jaxsr `RealPLKSR` (dim 64, 28 blocks, kernel 17, split 0.25, EA, LayerNorm, as
             traiNNer-redux's realplksr)  vs spandrel's `RealPLKSR(layer_norm=True)`.
  hat        jaxsr `HAT` (HAT-M: embed 180, 6x6, window 16, compress 3, squeeze 30, overlap
             0.5, mlp 2)  vs spandrel's `HAT`.
  rcan       jaxsr `RCAN` (10 groups x 20 RCABs, 64 feat, reduction 16, rgb_range 255)  vs
             spandrel's `RCAN` (its forward scales the input in place: each pass gets a copy).
jaxsr's ONNX exporter may not cover a family: the row then carries `onnx_error`.
--precision=half: jaxsr computes in bfloat16 (float32 parameters, as `jaxsr.upscale --bf16`),
torch in float16 (`.half()`, as Real-ESRGAN's inference; SwinIR, whose attention adds float32
masks, and the other transformer rows (dat, omnisr, hat) under `torch.autocast(float16)`).
--torch_device=cuda runs the torch
side on the GPU (each pass synchronized); --torch_mode=best adds channels_last and
`torch.compile`. --tiny: a few narrow blocks of each architecture (smoke runs).

Same weights on all sides: the torch process builds the peer model with its default init after
`torch.manual_seed(--seed)` and saves its state dict (`torch.save`); jaxsr reads that file with
its own importer `jaxsr.interop.load.load_variables` (the `python -m jaxsr.convert` path) and
the ONNX model is exported from those variables. All sides see the same random input (numpy,
seed --seed). Sanity fields: `max_abs_diff_jaxsr_torch`, `max_abs_diff_onnx_torch`,
`max_abs_diff_onnx_jaxsr` (raw outputs, not clipped; expect ~1e-5 .. 1e-4 from float32
summation order). Ratios: `torch_over_jaxsr` = torch_s / jaxsr_s and `torch_over_onnx` =
torch_s / onnx_s (> 1: faster than PyTorch).

Threads: --threads (default: every core this process may use) sets torch.set_num_threads and
ONNX Runtime's intra-op threads; XLA's CPU backend has no such setting and uses every core
(restrict all sides with `taskset -c`). This script imports no TensorFlow (jaxsr.models,
jaxsr.builders, jaxsr.convert do not), so it runs on machines without TF. A side that fails
records its error in `<side>_error` and the run goes on.

Environment: jaxsr's venv (with `onnxruntime`, `onnx`) runs this script; the torch side runs in
a subprocess of --torch_python (default: this Python). The torch venv used here is the one of
bench/compare_basicsr.py (see its docstring: torch 2.14.1, torchvision 0.29.1, basicsr 1.4.2
installed with --no-build-isolation --no-deps, plus opencv-python-headless scipy scikit-image
pyyaml tqdm lmdb addict future yapf requests; the spandrel rows need `pip install
spandrel==0.4.2`, which adds einops, safetensors and typing_extensions). It has no
realesrgan. /tmp/torchvenv (torch 2.13 CPU, basicsr 1.4.2, realesrgan 0.3.0, but no
torchvision, so basicsr and realesrgan do not import there) holds the realesrgan 0.3.0
package whose archs/srvgg_arch.py the srvgg row runs, imported by path into the
/tmp/benchvenv process (realesrgan is pure Python; its archs use
basicsr's registry, where basicsr 1.4.2 registers its own copy as 'SRVGGNetCompact_basicsr', so
the names do not clash). basicsr 1.4.2 imports `torchvision.transforms.functional_tensor`, gone
since torchvision 0.17: the torch process aliases it to `torchvision.transforms.functional`
before importing basicsr (as compare_basicsr.py does); nothing else is patched.

The measurement (on an otherwise idle machine: torch's OpenMP threads slow down many-fold when
other processes share the cores; the default run took ~6 min on 2 cores, mostly rrdbnet at
256^2, ~17-28 s per pass per side):
  venv/bin/python bench/inference.py --torch_python=/tmp/benchvenv/bin/python \
      --warmup=1 --runs=3 | tee /tmp/inference.jsonl
The issue's shape (LR 128^2 -> 512^2, ~2 min for rrdbnet):
  venv/bin/python bench/inference.py --torch_python=/tmp/benchvenv/bin/python --size=128
Smoke test (~1 min):
  venv/bin/python bench/inference.py --torch_python=/tmp/benchvenv/bin/python --size=32 \
      --warmup=0 --runs=1
The spandrel rows (spandrel 0.4.2 in --torch_python; ~0.5-2 min each at LR 64 on 2 cores):
  venv/bin/python bench/inference.py --torch_python=/tmp/benchvenv/bin/python \
      --rows=span,dat,omnisr,realplksr,hat,rcan --size=64 --warmup=1 --runs=5
On a shared or virtual machine, run-to-run spread was up to +-15% (same code); compare sides
within one run, and repeat.
"""

import contextlib
import glob
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
SCALE = 4

# row -> jaxsr model (registry name, options), the torch peer (module, class, kwargs), the
# jaxsr.convert arch that reads the peer's state dict.
ROWS = {
    "msrresnet": {
        "jaxsr": ("msrresnet", {"num_feat": 64, "num_block": 16}),
        "torch": ("basicsr.archs.srresnet_arch", "MSRResNet",
                  {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_block": 16,
                   "upscale": SCALE}),
        "arch": "msrresnet"},
    "rrdbnet": {
        "jaxsr": ("rrdbnet", {"num_feat": 64, "num_block": 23, "num_grow_ch": 32}),
        "torch": ("basicsr.archs.rrdbnet_arch", "RRDBNet",
                  {"num_in_ch": 3, "num_out_ch": 3, "scale": SCALE, "num_feat": 64,
                   "num_block": 23, "num_grow_ch": 32}),
        "arch": "rrdbnet"},
    "srvgg": {
        "jaxsr": ("srvgg", {"num_feat": 64, "num_conv": 32, "act_type": "prelu"}),
        "torch": ("realesrgan.archs.srvgg_arch", "SRVGGNetCompact",
                  {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_conv": 32,
                   "upscale": SCALE, "act_type": "prelu"}),
        "arch": "srvgg"},
    "swinir": {
        "jaxsr": ("swinir", {"embed_dim": 180, "depths": (6,) * 6, "num_heads": (6,) * 6,
                             "window_size": 8, "upsampler": "pixelshuffle"}),
        "torch": ("basicsr.archs.swinir_arch", "SwinIR",
                  {"upscale": SCALE, "in_chans": 3, "img_size": 64, "window_size": 8,
                   "img_range": 1.0, "depths": [6] * 6, "embed_dim": 180,
                   "num_heads": [6] * 6, "mlp_ratio": 2.0, "upsampler": "pixelshuffle",
                   "resi_connection": "1conv"}),
        "arch": "swinir", "torch_autocast": True},
    # spandrel 0.4.2's own modules (the code spandrel loads community weights into).
    "span": {
        "jaxsr": ("span", {"feature_channels": 48, "norm": True}),
        "torch": ("spandrel.architectures.SPAN.__arch.span", "SPAN",
                  {"num_in_ch": 3, "num_out_ch": 3, "feature_channels": 48, "upscale": SCALE,
                   "norm": True}),
        "arch": "span"},
    "dat": {
        "jaxsr": ("dat", {"embed_dim": 180, "split_size": (8, 32), "depth": (6,) * 6,
                          "num_heads": (6,) * 6, "expansion_factor": 4.0,
                          "resi_connection": "1conv", "upsampler": "pixelshuffle"}),
        "torch": ("spandrel.architectures.DAT.__arch.DAT", "DAT",
                  {"upscale": SCALE, "in_chans": 3, "img_size": 64, "img_range": 1.0,
                   "embed_dim": 180, "split_size": [8, 32], "depth": [6] * 6,
                   "num_heads": [6] * 6, "expansion_factor": 4.0, "qkv_bias": True,
                   "resi_connection": "1conv", "upsampler": "pixelshuffle"}),
        "arch": "dat", "torch_autocast": True},
    "omnisr": {
        "jaxsr": ("omnisr", {"num_feat": 64, "res_num": 5, "block_num": 1, "window_size": 8,
                             "pe": True, "bias": True}),
        "torch": ("spandrel.architectures.OmniSR.__arch.OmniSR", "OmniSR",
                  {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "res_num": 5,
                   "block_num": 1, "window_size": 8, "pe": True, "bias": True,
                   "up_scale": SCALE}),
        "arch": "omnisr", "torch_autocast": True},
    "realplksr": {
        "jaxsr": ("realplksr", {"dim": 64, "n_blocks": 28, "kernel_size": 17,
                                "split_ratio": 0.25, "use_ea": True, "layer_norm": True,
                                "dysample": False}),
        "torch": ("spandrel.architectures.PLKSR.__arch.RealPLKSR", "RealPLKSR",
                  {"dim": 64, "n_blocks": 28, "upscaling_factor": SCALE, "kernel_size": 17,
                   "split_ratio": 0.25, "use_ea": True, "layer_norm": True,
                   "dysample": False}),
        "arch": "realplksr"},
    "hat": {
        "jaxsr": ("hat", {"embed_dim": 180, "depths": (6,) * 6, "num_heads": (6,) * 6,
                          "window_size": 16, "compress_ratio": 3, "squeeze_factor": 30,
                          "overlap_ratio": 0.5, "mlp_ratio": 2.0, "resi_connection": "1conv"}),
        "torch": ("spandrel.architectures.HAT.__arch.HAT", "HAT",
                  {"upscale": SCALE, "in_chans": 3, "img_size": 64, "img_range": 1.0,
                   "embed_dim": 180, "depths": [6] * 6, "num_heads": [6] * 6,
                   "window_size": 16, "compress_ratio": 3, "squeeze_factor": 30,
                   "conv_scale": 0.01, "overlap_ratio": 0.5, "mlp_ratio": 2.0,
                   "upsampler": "pixelshuffle", "resi_connection": "1conv"}),
        "arch": "hat", "torch_autocast": True},
    "rcan": {
        "jaxsr": ("rcan", {"n_resgroups": 10, "n_resblocks": 20, "n_feats": 64,
                           "reduction": 16, "rgb_range": 255.0}),
        "torch": ("spandrel.architectures.RCAN.__arch.rcan_arch", "RCAN",
                  {"scale": SCALE, "n_resgroups": 10, "n_resblocks": 20, "n_feats": 64,
                   "n_colors": 3, "rgb_range": 255, "reduction": 16}),
        # RCAN.forward scales its input in place (`x *= rgb_range`): a fresh copy each pass.
        "arch": "rcan", "torch_input_inplace": True},
}
# Smoke runs (--tiny): the same rows with a few narrow blocks.
TINY = {"msrresnet": {"num_feat": 8, "num_block": 1},
        "rrdbnet": {"num_feat": 8, "num_block": 1, "num_grow_ch": 4},
        "srvgg": {"num_feat": 8, "num_conv": 2},
        "swinir": {"embed_dim": 12, "depths": (2,), "num_heads": (2,), "window_size": 4},
        **peer_process.FAMILY_TINY}


def tiny_row(name: str) -> dict:
  """ROWS[name] with TINY[name]'s hyper-parameters on both sides."""
  row = ROWS[name]
  module, cls, kwargs = row["torch"]
  jaxsr_opts = {**row["jaxsr"][1], **TINY[name]}
  torch_kwargs = dict(kwargs, **{k: list(v) if isinstance(v, tuple) else v
                                 for k, v in TINY[name].items()})
  return {**row, "jaxsr": (row["jaxsr"][0], jaxsr_opts), "torch": (module, cls, torch_kwargs)}


# ----------------------------------------------------------------------------- helpers (both)

def time_calls(fn, warmup: int, runs: int) -> list:
  """Seconds of `runs` calls of `fn()` after `warmup` untimed ones."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return times



# ----------------------------------------------------------------------------- torch side

def _find_realesrgan(hint: str) -> str:
  candidates = [hint] if hint else sorted(
      glob.glob("/tmp/*/lib/python3*/site-packages/realesrgan"))
  for path in candidates:
    if os.path.isfile(os.path.join(path, "archs", "srvgg_arch.py")):
      return path
  raise ImportError("realesrgan is not importable here and no installed realesrgan package "
                    "was found (--realesrgan_dir)")


def _import_torch_peer(module_name: str, realesrgan_dir: str):
  """The peer's module; realesrgan from another venv's site-packages if not importable."""
  import importlib
  if module_name.startswith("realesrgan."):
    try:
      import realesrgan  # pylint: disable=unused-import
    except ImportError:
      path = _find_realesrgan(realesrgan_dir)
      spec = importlib.util.spec_from_file_location(
          "realesrgan", os.path.join(path, "__init__.py"), submodule_search_locations=[path])
      package = importlib.util.module_from_spec(spec)
      sys.modules["realesrgan"] = package
      try:
        spec.loader.exec_module(package)
      except BaseException:
        sys.modules.pop("realesrgan", None)
        raise
  return importlib.import_module(module_name)


def torch_child(spec_path: str, out_path: str) -> None:
  """Runs in --torch_python: builds the peer model (seeded default init), saves its state
  dict, times its forward pass, saves its output."""
  with open(spec_path) as f:
    spec = json.load(f)
  import numpy as np
  import torch
  torch.set_num_threads(spec["threads"])
  import torchvision
  peer_process.alias_functional_tensor()
  import basicsr
  module_name, class_name, kwargs = spec["peer"]
  module = _import_torch_peer(module_name, spec["realesrgan_dir"])
  torch.manual_seed(spec["seed"])
  model = getattr(module, class_name)(**kwargs).eval()
  torch.save(model.state_dict(), spec["weights_path"])
  device = spec.get("device", "cpu")
  half = spec.get("precision") == "half"
  # SwinIR's attention adds float32 masks and biases: in half precision it runs under
  # autocast float16 (what its users do), as do the other transformer rows (the row's
  # "torch_autocast"); the CNNs are cast to float16 (`.half()`).
  autocast = half and spec.get("autocast", module_name.endswith("swinir_arch"))
  dtype = torch.float16 if half and not autocast else torch.float32
  x = torch.from_numpy(np.load(spec["input_path"]).transpose(0, 3, 1, 2).copy())
  model, x = model.to(device, dtype), x.to(device, dtype)
  context = (lambda: torch.autocast(device_type=device, dtype=torch.float16)) if autocast else (
      contextlib.nullcontext)
  if spec.get("mode") == "best":  # channels_last and torch.compile, as traiNNer-redux runs
    model, x = model.to(memory_format=torch.channels_last), x.contiguous(
        memory_format=torch.channels_last)
    model = torch.compile(model)
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
  out = {}

  clone = spec.get("clone_input", False)

  def forward():
    with torch.inference_mode(), context():
      out["y"] = model(x.clone() if clone else x)
    sync()

  times = time_calls(forward, spec["warmup"], spec["runs"])
  np.save(spec["output_path"], out["y"].float().cpu().numpy())
  versions = {"torch": torch.__version__, "torchvision": torchvision.__version__,
              "basicsr": basicsr.__version__, "numpy": np.__version__,
              "python": platform.python_version()}
  if module_name.startswith("spandrel."):
    import spandrel
    versions["spandrel"] = spandrel.__version__
  if module_name.startswith("realesrgan."):
    try:
      from importlib import metadata
      versions["realesrgan"] = metadata.version("realesrgan")
    except Exception:  # pylint: disable=broad-except
      dist = glob.glob(os.path.join(os.path.dirname(os.path.dirname(module.__file__)),
                                    "..", "realesrgan-*.dist-info"))
      versions["realesrgan"] = (os.path.basename(dist[0])[len("realesrgan-"):-len(".dist-info")]
                                if dist else None)
  result = {"median_s": statistics.median(times), "times_s": [round(t, 4) for t in times],
            "arch_file": os.path.abspath(module.__file__),
            "model_class": f"{module_name}.{class_name}",
            "params": sum(p.numel() for p in model.parameters()),
            "threads": torch.get_num_threads(), "device": device,
            "dtype": "autocast float16" if autocast else str(dtype),
            "mode": spec.get("mode", "plain"),
            "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
            "interop_threads": torch.get_num_interop_threads(), "versions": versions}
  with open(out_path, "w") as f:
    json.dump(result, f)


def run_torch(spec: dict, torch_python: str) -> dict:
  return peer_process.run_torch(__file__, spec, torch_python, "bench_inference_spec_")


# ----------------------------------------------------------------------------- jaxsr side

def jaxsr_model_and_variables(row: dict, weights_path: str, precision: str = "float32"):
  """The jaxsr model (computing in bfloat16 for `precision` 'half', float32 parameters, as
  `jaxsr.upscale --bf16`) and its variables: the torch peer's weights when `weights_path`
  exists (read by jaxsr.convert), else jaxsr's own init (seed 0)."""
  import jax
  import jax.numpy as jnp
  from jaxsr.interop import load as interop_load
  from jaxsr import models
  name, opts = row["jaxsr"]
  dtype = jnp.bfloat16 if precision == "half" else jnp.float32
  model = models.MODELS[name](scale=SCALE, dtype=dtype, **opts)
  x = jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32)
  like = jax.eval_shape(lambda k, x: dict(model.init(k, x)), jax.random.key(0), x)
  if weights_path and os.path.exists(weights_path):
    loaded = interop_load.load_variables(weights_path, row["arch"], like=like)
    hparams, variables = loaded.hparams, loaded.variables
    source = "torch peer's default init, via jaxsr.interop.load.load_variables"
    expected = {"scale": SCALE, **opts}
    same = lambda a, b: (tuple(a) == tuple(b) if isinstance(a, (list, tuple))
                         and isinstance(b, (list, tuple)) else a == b)
    if any(not same(hparams.get(k, v), v) for k, v in expected.items()):
      raise ValueError(f"the peer's state dict reads as {hparams}, not {expected}")
  else:
    variables = jax.device_get(dict(model.init(jax.random.key(0), jnp.zeros(x.shape))))
    source = "jaxsr init (seed 0): no torch weights"
  return model, variables, source


def run_jaxsr(model, variables, x, args) -> dict:
  import jax
  from jaxsr import builders
  apply = jax.jit(builders.make_apply_fn(model))
  variables = jax.device_put(variables)
  x = jax.device_put(x)
  start = time.perf_counter()
  compiled = apply.lower(variables, x).compile()
  compile_s = time.perf_counter() - start
  out = {}

  def forward():
    out["y"] = compiled(variables, x).block_until_ready()

  times = time_calls(forward, args.warmup, args.runs)
  return {"median_s": statistics.median(times), "times_s": [round(t, 4) for t in times],
          "compile_s": round(compile_s, 2), "device": str(jax.devices()[0].device_kind),
          "y": jax.device_get(out["y"])}


def run_onnx(model, variables, x, args) -> dict:
  import onnxruntime as ort
  from jaxsr.export import onnx_export
  from jaxsr import inference
  # Symbolic sizes k * multiple: the model's input multiple when the LR side is one (windowed
  # models pad to it with reflect pads, which a size-1 multiple cannot export), else 1.
  multiple = inference.input_multiple(model)
  multiple = multiple if x.shape[1] % multiple == 0 and x.shape[2] % multiple == 0 else 1
  start = time.perf_counter()
  proto = onnx_export.to_onnx_model(model, variables, multiple=multiple)
  export_s = time.perf_counter() - start
  options = ort.SessionOptions()
  options.intra_op_num_threads = args.threads
  options.inter_op_num_threads = 1
  options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
  session = ort.InferenceSession(proto.SerializeToString(), options,
                                 providers=["CPUExecutionProvider"])
  name = session.get_inputs()[0].name
  out = {}

  def forward():
    out["y"] = session.run(None, {name: x})[0]

  times = time_calls(forward, args.warmup, args.runs)
  return {"median_s": statistics.median(times), "times_s": [round(t, 4) for t in times],
          "export_s": round(export_s, 2), "multiple": multiple, "opset": [
              {"domain": o.domain or "ai.onnx", "version": o.version}
              for o in proto.opset_import], "y": out["y"]}


def versions() -> dict:
  out = {"python": platform.python_version()}
  for module in ("jax", "jaxlib", "flax", "numpy", "onnxruntime", "onnx", "jaxsr"):
    try:
      out[module] = __import__(module).__version__
    except Exception as e:  # pylint: disable=broad-except
      out[module] = f"unavailable ({error_text(e)})"
  return out


def run_side(side: str, name: str, run, out: dict, megapixels: float):
  """`run()`'s result (a dict with median_s and times_s) for row `name`'s `side` (jaxsr, onnx),
  its `<side>_median_s` / `_min_s` / `_mp_s` put in `out`; on an error, None and
  `<side>_error` in `out` (the traceback on stderr): the row goes on."""
  try:
    logging.warning("%s: %s side", name, side)
    res = run()
    out.update({f"{side}_median_s": round(res["median_s"], 4),
                f"{side}_min_s": min(res["times_s"]),
                f"{side}_mp_s": round(megapixels / res["median_s"], 4)})
    return res
  except Exception as e:  # pylint: disable=broad-except
    traceback.print_exc(file=sys.stderr)
    out[f"{side}_error"] = error_text(e)
    return None


def max_abs_diff(a, b):
  import numpy as np
  if a is None or b is None:
    return None
  if a.shape != b.shape:
    return f"shape mismatch {a.shape} vs {b.shape}"
  return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def main() -> None:
  parser = peer_process.row_parser(__doc__, ROWS)
  parser.add_argument("--size", type=int, default=256, help="LR side S (output 4S x 4S)")
  parser.add_argument("--warmup", type=int, default=1, help="untimed passes (after compile)")
  parser.add_argument("--runs", type=int, default=3, help="timed passes (median reported)")
  cores = cpu_info()["cores"]
  parser.add_argument("--threads", type=int, default=cores,
                      help="torch.set_num_threads and ONNX Runtime intra-op threads (default: "
                           "all usable cores); XLA uses all cores")
  parser.add_argument("--torch_python", default=sys.executable,
                      help="Python with torch, torchvision, basicsr 1.4.2 (see docstring)")
  parser.add_argument("--realesrgan_dir", default="",
                      help="an installed realesrgan package folder, used when --torch_python "
                           "cannot import realesrgan (default: searched under /tmp/*/lib)")
  parser.add_argument("--sides", default="jaxsr,onnx,torch",
                      help="comma list of sides to run (default all three)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--precision", choices=("float32", "half"), default="float32",
                      help="half: jaxsr computes in bfloat16 (float32 parameters, as "
                           "jaxsr.upscale --bf16), torch in float16 (.half(), as "
                           "Real-ESRGAN's inference); float32 on both sides otherwise")
  parser.add_argument("--torch_device", choices=("cpu", "cuda"), default="cpu")
  parser.add_argument("--torch_mode", choices=("plain", "best"), default="plain",
                      help="best: channels_last and torch.compile of the module")
  parser.add_argument("--tiny", action="store_true",
                      help="a few narrow blocks of each row's architecture (smoke runs)")
  args = parser.parse_args()
  rows = peer_process.selected_rows(parser, args.rows, ROWS)
  sides = {s.strip() for s in args.sides.split(",") if s.strip()}
  if sides - {"jaxsr", "onnx", "torch"}:
    parser.error("--sides: jaxsr, onnx, torch")
  if args.runs < 1 or args.warmup < 0 or args.size < 1 or args.threads < 1:
    parser.error("--runs >= 1, --warmup >= 0, --size >= 1, --threads >= 1")
  logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

  import numpy as np
  cpu = cpu_info()
  jaxv = versions()
  out_side = SCALE * args.size
  megapixels = out_side * out_side / 1e6
  x = np.random.default_rng(args.seed).random((1, args.size, args.size, 3), np.float32)
  tmp = tempfile.mkdtemp(prefix="bench_inference_")
  try:
    input_path = os.path.join(tmp, "input.npy")
    np.save(input_path, x)
    for name in rows:
      row = tiny_row(name) if args.tiny else ROWS[name]
      out = {"bench": "inference", "row": name, "jaxsr_model": row["jaxsr"][0],
             "jaxsr_options": {"scale": SCALE, **row["jaxsr"][1]},
             "torch_model": f"{row['torch'][0]}.{row['torch'][1]}",
             "torch_kwargs": row["torch"][2], "batch": 1, "lr_size": args.size,
             "hr_size": out_side, "output_megapixels": megapixels,
             "precision": args.precision, "torch_device": args.torch_device,
             "torch_mode": args.torch_mode}
      notes = ["XLA's CPU backend uses every core (jax_threads = cores); --threads sets torch "
               "and ONNX Runtime", "compile / session creation excluded"]
      weights_path = os.path.join(tmp, f"{name}.pth")
      torch_res = torch_y = None
      if "torch" in sides:
        spec = {"peer": list(row["torch"]), "seed": args.seed, "threads": args.threads,
                "warmup": args.warmup, "runs": args.runs, "input_path": input_path,
                "weights_path": weights_path, "realesrgan_dir": args.realesrgan_dir,
                "device": args.torch_device, "precision": args.precision,
                "mode": args.torch_mode, "autocast": row.get("torch_autocast", False),
                "clone_input": row.get("torch_input_inplace", False),
                "output_path": os.path.join(tmp, f"{name}_torch.npy")}
        try:
          logging.warning("%s: torch side", name)
          torch_res = run_torch(spec, args.torch_python)
          torch_y = np.load(spec["output_path"]).transpose(0, 2, 3, 1)
          out.update({"torch_median_s": round(torch_res["median_s"], 4),
                      "torch_min_s": min(torch_res["times_s"]),
                      "torch_mp_s": round(megapixels / torch_res["median_s"], 4)})
        except Exception as e:  # pylint: disable=broad-except
          out["torch_error"] = error_text(e)
      jax_res = onnx_res = None
      try:
        model, variables, source = jaxsr_model_and_variables(row, weights_path, args.precision)
        out["weights"] = source
      except Exception as e:  # pylint: disable=broad-except
        traceback.print_exc(file=sys.stderr)
        out["jaxsr_error"] = out["onnx_error"] = f"weights: {error_text(e)}"
        model = None
      if model is not None and "jaxsr" in sides:
        jax_res = run_side("jaxsr", name, lambda: run_jaxsr(model, variables, x, args), out,
                           megapixels)
      if model is not None and "onnx" in sides:
        onnx_res = run_side("onnx", name, lambda: run_onnx(model, variables, x, args), out,
                            megapixels)
      if torch_res and jax_res:
        out["torch_over_jaxsr"] = round(torch_res["median_s"] / jax_res["median_s"], 3)
      if torch_res and onnx_res:
        out["torch_over_onnx"] = round(torch_res["median_s"] / onnx_res["median_s"], 3)
      jax_y = jax_res["y"] if jax_res else None
      onnx_y = onnx_res["y"] if onnx_res else None
      out.update({"max_abs_diff_jaxsr_torch": max_abs_diff(jax_y, torch_y),
                  "max_abs_diff_onnx_torch": max_abs_diff(onnx_y, torch_y),
                  "max_abs_diff_onnx_jaxsr": max_abs_diff(onnx_y, jax_y)})
      if jax_res:
        out.update({"jaxsr_times_s": jax_res["times_s"], "jaxsr_compile_s": jax_res["compile_s"],
                    "jaxsr_device": jax_res["device"]})
      if onnx_res:
        out.update({"onnx_times_s": onnx_res["times_s"], "onnx_export_s": onnx_res["export_s"],
                    "onnx_input_multiple": onnx_res["multiple"],
                    "onnx_opset": onnx_res["opset"]})
      if torch_res:
        out.update({"torch_times_s": torch_res["times_s"], "torch_gpu": torch_res["gpu"],
                    "torch_dtype": torch_res["dtype"],
                    "torch_model_class": torch_res["model_class"],
                    "torch_arch_file": torch_res["arch_file"],
                    "torch_params": torch_res["params"],
                    "torch_threads": torch_res["threads"],
                    "torch_interop_threads": torch_res["interop_threads"],
                    "torch_version": torch_res["versions"]["torch"],
                    "torch_versions": torch_res["versions"]})
        if not torch_res["arch_file"].startswith(os.path.dirname(os.path.dirname(
            os.path.abspath(args.torch_python)))):
          notes.append(f"the torch model's code comes from {torch_res['arch_file']}, outside "
                       f"--torch_python's venv")
      out.update({"jax_version": jaxv.get("jax"), "onnxruntime_version": jaxv.get("onnxruntime"),
                  "threads": args.threads, "jax_threads": cpu["cores"],
                  "warmup": args.warmup, "runs": args.runs, **cpu,
                  "jax_versions": jaxv, "note": "; ".join(notes)})
      print(json.dumps(out), flush=True)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
  if len(sys.argv) == 4 and sys.argv[1] == "--_torch_child":
    torch_child(sys.argv[2], sys.argv[3])
  else:
    main()
