"""Pieces shared by the benchmarks that run a PyTorch peer in another venv
(`compare_basicsr.py`, `inference.py`): machine facts, error text, the torch subprocess, the
tiny (smoke) hyper-parameters of the spandrel families and basicsr's torchvision alias.

Imports nothing beyond the standard library: the torch process (another venv, no jax) imports
it too, from the bench/ folder of the script it runs.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

# --tiny of the families whose torch peer is spandrel's module (compare_basicsr.py's plain step,
# inference.py's rows): a few narrow blocks, the same on both sides.
FAMILY_TINY = {
    "span": {"feature_channels": 4},
    "dat": {"embed_dim": 32, "split_size": (2, 4), "depth": (2,), "num_heads": (2,),
            "expansion_factor": 1.0},
    "omnisr": {"num_feat": 8, "res_num": 1, "window_size": 4},
    "realplksr": {"dim": 8, "n_blocks": 1, "kernel_size": 5},
    "hat": {"embed_dim": 30, "depths": (2,), "num_heads": (2,), "window_size": 4},
    "rcan": {"n_resgroups": 1, "n_resblocks": 2, "n_feats": 8, "reduction": 4},
}


def row_parser(doc: str, rows) -> argparse.ArgumentParser:
  """The benchmark's parser (its description: the first paragraph of `doc`) with --rows, a
  comma list of `rows` (default all); `selected_rows` reads it."""
  parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--rows", default=",".join(rows),
                      help=f"comma list of rows (default all): {', '.join(rows)}")
  return parser


def selected_rows(parser: argparse.ArgumentParser, text: str, rows) -> list:
  """--rows `text` as a list; a parser error naming the rows not in `rows`."""
  selected = [r.strip() for r in text.split(",") if r.strip()]
  unknown = [r for r in selected if r not in rows]
  if unknown:
    parser.error(f"unknown rows {unknown}; rows: {list(rows)}")
  return selected


def cpu_info() -> dict:
  """CPU model ('model name' of /proc/cpuinfo), AVX-512F / AVX2 flags, usable cores."""
  model, flags = None, None
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
          model = value.strip()
        elif key == "flags" and flags is None:
          flags = set(value.split())
  except OSError:
    pass
  flags = flags or set()
  return {"cpu_model": model or platform.processor() or "unknown",
          "avx512f": "avx512f" in flags, "avx2": "avx2" in flags,
          "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count()}


def error_text(e: BaseException) -> str:
  return f"{type(e).__name__}: {e}"


def alias_functional_tensor() -> None:
  """In the torch process, before importing basicsr: basicsr 1.4.2 (basicsr/data/degradations.py)
  imports `torchvision.transforms.functional_tensor`, removed in torchvision 0.17; its one use
  (rgb_to_grayscale) lives on in `torchvision.transforms.functional`."""
  import torchvision.transforms.functional  # pylint: disable=import-outside-toplevel
  sys.modules.setdefault("torchvision.transforms.functional_tensor",
                         torchvision.transforms.functional)


def run_torch(script: str, spec: dict, torch_python: str, prefix: str,
              chdir: bool = True) -> dict:
  """Runs `<torch_python> <script> --_torch_child <spec.json> <result.json>` with the files in
  a temporary directory (also its working directory when `chdir`) and returns the result JSON;
  RuntimeError with the child's last stderr line if it fails. Its stdout goes to our stderr."""
  with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
    spec_path, out_path = os.path.join(tmp, "spec.json"), os.path.join(tmp, "result.json")
    with open(spec_path, "w") as f:
      json.dump(spec, f)
    proc = subprocess.run([torch_python, os.path.abspath(script), "--_torch_child",
                           spec_path, out_path], stdout=sys.stderr, stderr=subprocess.PIPE,
                          text=True, cwd=tmp if chdir else None)
    sys.stderr.write(proc.stderr)
    if proc.returncode or not os.path.exists(out_path):
      lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
      raise RuntimeError(f"torch process ({torch_python}) exited {proc.returncode}: "
                         + (lines[-1] if lines else "no output"))
    with open(out_path) as f:
      return json.load(f)
