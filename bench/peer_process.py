"""Pieces shared by the benchmarks that run a PyTorch peer in another venv
(`compare_basicsr.py`, `inference.py`): machine facts, error text, and the torch subprocess.

Imports nothing beyond the standard library: the torch process (another venv, no jax) imports
it too, from the bench/ folder of the script it runs.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile


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
