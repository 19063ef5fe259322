"""Issue #19's GPU rows in one command: jaxsr against the PyTorch peers' own code on the same
GPU, in one run, each row in its own process under its own time limit.

  python bench/gpu_suite.py --torch_python=/path/to/torch/python --out=/tmp/gpu_suite
  python bench/gpu_suite.py --smoke --out=/tmp/smoke    # tiny shapes, torch on CPU (a test)

Writes `<out>/rows.jsonl` (one JSON line per row as it ends, also printed on stdout) and
`<out>/table.md` (one line per comparison: jaxsr, the peer, peer / jaxsr, the issue's goal,
jaxsr's compile time and MFU). A row that fails, or runs past its limit, records `status` and
the last lines of its log, and loses only itself; rows past `--budget_s` are skipped by name.
Imports only the standard library: jax runs in the row processes (this Python), torch in
`--torch_python` (bench/compare_basicsr.py, bench/inference.py and bench/degrade.py run the
peers: BasicSR's `SRModel` / `ESRGANModel.optimize_parameters` and realesrgan's
`RealESRGANModel.optimize_parameters`, BasicSR's archs for inference, Real-ESRGAN's
`feed_data`). No row may import TensorFlow: a stand-in `tensorflow` package that raises on
import is put first on the rows' PYTHONPATH.

Rows (ms per train step, median of --steps after --warmup; inference: one 256x256 -> 1024x1024
image, batch 1):
  train/<model>/<f32|bf16>/jaxsr   bench/compare_basicsr.py --jax_only (the shipped config;
                                   compile time; analytic FLOPs and MFU, jaxsr.flops)
  train/<model>/<mode>/torch       BasicSR float32, bf16_autocast, or `best` (channels_last,
                                   autocast bf16, torch.compile of each network's forward)
       models: msrresnet (batch 16, LR 32), rrdbnet (16, 32), esrgan (G + VGG-style D + VGG19
       perceptual + RaGAN, 16, 32), swinir_classical (SwinIR-M x2, 32, 48)
  realworld/<realesrnet|realesrgan>/jaxsr  bench/realworld_step.py: degradations + step, batch
                                   12, GT 256 from 400 crops; `pairs_share` = the degradation
                                   stage's share of the step (goal <= 10 %)
  realworld/rrdbnet_b12/torch      BasicSR's RRDBNet step at Real-ESRNet's shape (batch 12,
                                   LR 64), bf16 autocast; with degrade/torch it makes the
                                   peer's Real-ESRNet step (their sum: Real-ESRGAN's feed_data
                                   runs on the GPU before optimize_parameters)
  realworld/realesrgan_b12/torch   realesrgan's RealESRGANModel.optimize_parameters (RRDBNet G
                                   + UNetDiscriminatorSN, L1 + VGG19 perceptual on the USM GT +
                                   vanilla GAN 0.1, EMA 0.999) at Real-ESRGAN's shape (batch
                                   12, LR 64), bf16 autocast, random VGG19 weights; with
                                   degrade/torch the peer's Real-ESRGAN step
  infer/<model>/<float32|half>     bench/inference.py, both sides (torch: eval, inference_mode;
                                   half = torch float16, jaxsr bfloat16), + `best` (torch
                                   channels_last and torch.compile); msrresnet, rrdbnet, srvgg,
                                   swinir (SwinIR-M x4)
  degrade/<jaxsr|torch>            bench/degrade.py: jaxsr's compiled degradations vs
                                   Real-ESRGAN's feed_data on the GPU (batch 12, crop 400)
  family/train/<model>/...         as train/ (the same tags), torch: compare_basicsr.py's
  family/infer/<model>/...         plain step / inference.py's rows on spandrel 0.4.2's own
                                   modules; span (batch 16, LR 64), dat (8, 64), omnisr (16,
                                   64), realplksr (16, 48), hat (4, 64), rcan (16, 48): the
                                   recipes' per-GPU batches. Last in the list, no goal; run
                                   them with --only=family/ (and a --budget_s that fits them)
Goals (issue #19): every train and inference comparison >= 1.5x the peer as it ships, >= 1.0x
PyTorch at its best; SwinIR bf16 >= 3x; compile <= 60 s (SwinIR-M <= 45 s).

A machine without internet (the H200 of issue #19: Python 3.12, jax 0.11 + CUDA 13, torch 2.11
+ CUDA 13, torchvision 0.26, no TensorFlow). Carry, within the 64 MiB a call may take:
  - wheels of flax, optax, orbax-checkpoint and ml_collections (pure Python; `pip download
    --no-deps --python-version 3.12 flax optax orbax-checkpoint ml_collections`), installed
    with `pip install --no-deps`, and jaxsr itself (`pip install --no-deps -e .`);
  - basicsr 1.4.2 and realesrgan 0.3.0 as package folders (copied from a site-packages) on the
    torch Python's PYTHONPATH: their setup.py needs the internet and `distutils` (gone in 3.12);
    the family/ rows also need spandrel 0.4.2 (and einops), pure Python, the same way;
  - basicsr imports `torchvision.transforms.functional_tensor` (gone since torchvision 0.17):
    the torch processes alias it to `torchvision.transforms.functional` before importing it
    (compare_basicsr.py, inference.py and degrade.py do; nothing else is patched).
Then: `python bench/gpu_suite.py --torch_python=$(which python) --out=$OUT/suite`.
"""

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

TRAIN = {  # row -> (batch, LR patch) as issue #19 measured them.
    "msrresnet": (16, 32), "rrdbnet": (16, 32), "esrgan": (16, 32),
    "swinir_classical": (32, 48)}
INFER = ("msrresnet", "rrdbnet", "srvgg", "swinir")
# The families whose torch peer is spandrel's module (compare_basicsr.py's plain torch step,
# inference.py's spandrel rows): row -> (batch, LR patch), the recipes' per-GPU batches. Their
# rows come after issue #19's (the budget cuts them first): run them with --only=family/.
FAMILIES = {"span": (16, 64), "dat": (8, 64), "omnisr": (16, 64), "realplksr": (16, 48),
            "hat": (4, 64), "rcan": (16, 48)}
GOAL_PEER, GOAL_BEST, GOAL_SWINIR_BF16 = 1.5, 1.0, 3.0


@dataclasses.dataclass
class Row:
  """One process: `python <script> <args>` with `python` jaxsr's or the torch one."""
  id: str
  script: str
  args: list
  torch_python: bool = False  # run by --torch_python (else this Python)
  needs_torch: bool = False  # a torch side somewhere in the process tree
  limit_s: float = 240.0


def train_rows(prefix: str, model: str, common: list, a, device: str) -> list:
  """compare_basicsr.py's rows of one model: `<prefix><model>/<f32|bf16>/jaxsr` and
  `<prefix><model>/<float32|bf16_autocast|best>/torch` (`common`: the row, shapes, steps)."""
  rows = []
  for dtype, tag in (("float32", "f32"), ("bfloat16", "bf16")):
    rows.append(Row(f"{prefix}{model}/{tag}/jaxsr", "compare_basicsr.py",
                    common + ["--jax_only", f"--dtype={dtype}"]))
  for mode in ("float32", "bf16_autocast", "best"):
    rows.append(Row(f"{prefix}{model}/{mode}/torch", "compare_basicsr.py",
                    common + ["--torch_only", f"--torch_device={device}",
                              f"--torch_mode={mode}", f"--torch_python={a.torch_python}"],
                    needs_torch=True, limit_s=300 if mode == "best" else 180))
  return rows


def infer_rows(prefix: str, model: str, shapes: list, a, device: str) -> list:
  """inference.py's rows of one model: `<prefix><model>/<float32|half>` (jaxsr and torch) and
  `<prefix><model>/half/torch_best` (`shapes`: size, runs, tiny)."""
  rows = []
  for precision in ("float32", "half"):
    rows.append(Row(f"{prefix}{model}/{precision}", "inference.py",
                    [f"--rows={model}", f"--precision={precision}", "--sides=jaxsr,torch",
                     f"--torch_device={device}", f"--torch_python={a.torch_python}",
                     *shapes], needs_torch=True))
  rows.append(Row(f"{prefix}{model}/half/torch_best", "inference.py",
                  [f"--rows={model}", "--precision=half", "--sides=torch",
                   "--torch_mode=best", f"--torch_device={device}",
                   f"--torch_python={a.torch_python}", *shapes],
                  needs_torch=True, limit_s=300))
  return rows


def build_rows(a) -> list:
  """Every row, most important first (the budget cuts from the end)."""
  smoke = a.smoke
  steps = ["--warmup=1", "--steps=1"] if smoke else [f"--warmup={a.warmup}",
                                                     f"--steps={a.steps}"]
  tiny = ["--tiny"] if smoke else []
  device = "cpu" if smoke else "cuda"
  rows = []
  for model, (batch, lr) in TRAIN.items():
    if smoke:
      batch, lr = 1, (32 if model == "esrgan" else 8)  # the VGG-style D takes HR 128
    rows += train_rows("train/", model, ["--rows=" + model, f"--batch={batch}",
                                         f"--lr_size={lr}", *steps, *tiny], a, device)
  size = ["--size=16"] if smoke else ["--size=256"]
  runs = ["--warmup=1", "--runs=1"] if smoke else ["--warmup=2", "--runs=10"]
  for model in INFER:
    rows += infer_rows("infer/", model, [*size, *runs, *tiny], a, device)
  degrade = (["--batch=1", "--queue_size=2", "--repeats=1", "--warmup=1"] if smoke
             else ["--batch=12", "--repeats=10"])
  rows.append(Row("degrade/jaxsr", "degrade.py",
                  ["--impl=jaxsr", *degrade] + (["--crop=64"] if smoke else [])))
  rows.append(Row("degrade/torch", "degrade.py",
                  ["--impl=torch", f"--torch_device={device}", *degrade],
                  torch_python=True, needs_torch=True))
  realworld = ["--batch=2", "--steps=1", "--tiny"] if smoke else ["--batch=12", "--steps=5"]
  for name in ("realesrnet", "realesrgan"):
    rows.append(Row(f"realworld/{name}/jaxsr", "realworld_step.py",
                    [f"--config={REPO}/configs/{name}_x4plus.py", "--random_vgg",
                     "--dtype=bfloat16", *realworld], limit_s=300))
  b12 = ["--batch=1", "--lr_size=8", "--tiny"] if smoke else ["--batch=12", "--lr_size=64"]
  # The peers' steps at the real-world configs' shape (batch 12, LR 64), AMP bf16; each with
  # degrade/torch (Real-ESRGAN's feed_data) makes the peer's real-world step.
  for row_id, row, limit_s in (("rrdbnet_b12", "rrdbnet", 240.0),
                               ("realesrgan_b12", "realesrgan", 300.0)):
    rows.append(Row(f"realworld/{row_id}/torch", "compare_basicsr.py",
                    [f"--rows={row}", *b12, *steps, "--torch_only",
                     f"--torch_device={device}", "--torch_mode=bf16_autocast",
                     f"--torch_python={a.torch_python}"], needs_torch=True, limit_s=limit_s))
  for model, (batch, lr) in FAMILIES.items():
    if smoke:  # DAT's BatchNorm needs batch >= 2; OmniSR's ESA LR >= 15
      batch, lr = (2 if model == "dat" else 1), 16
    rows += train_rows("family/train/", model, ["--rows=" + model, f"--batch={batch}",
                                                f"--lr_size={lr}", *steps, *tiny], a, device)
    rows += infer_rows("family/infer/", model, [*size, *runs, *tiny], a, device)
  return rows


def torch_problem(torch_python: str) -> str:
  """Why `torch_python` cannot run the peers ('' when it can)."""
  check = ("import sys, torchvision.transforms.functional as f; "
           "sys.modules.setdefault('torchvision.transforms.functional_tensor', f); "
           "import torch, basicsr")
  try:
    done = subprocess.run([torch_python, "-c", check], capture_output=True, text=True,
                          timeout=300)
  except (OSError, subprocess.TimeoutExpired) as e:
    return f"{torch_python}: {e}"
  if done.returncode:
    lines = done.stderr.strip().splitlines()
    return f"{torch_python} cannot import torch, torchvision and basicsr: " + (
        lines[-1] if lines else f"exit {done.returncode}")
  return ""


def no_tensorflow_path(folder: str) -> str:
  """A folder holding a `tensorflow` package whose import fails, for the rows' PYTHONPATH."""
  package = os.path.join(folder, "tensorflow")
  os.makedirs(package, exist_ok=True)
  with open(os.path.join(package, "__init__.py"), "w") as f:
    f.write("raise ImportError('bench/gpu_suite.py: a GPU row must not import TensorFlow')\n")
  return folder


def run_row(row: Row, a, limit_s: float, env: dict, log_path: str) -> dict:
  """Runs one row; its JSON lines (stdout) and its status: ok | failed | timeout."""
  python = a.torch_python if row.torch_python else sys.executable
  command = [python, os.path.join(HERE, row.script), *row.args]
  start = time.perf_counter()
  with open(log_path, "w") as log:
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                            cwd=REPO, start_new_session=True)
    try:
      stdout, _ = proc.communicate(timeout=limit_s)
      status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
      os.killpg(proc.pid, signal.SIGKILL)  # the row and its torch or compile children
      stdout, _ = proc.communicate()
      status = f"timeout ({limit_s:.0f} s)"
  results = []
  for line in stdout.splitlines():
    if line.startswith("{"):
      try:
        results.append(json.loads(line))
      except json.JSONDecodeError:
        pass
  errors = [f"{k}: {v}" for r in results for k, v in r.items() if k.endswith("error")]
  if status == "ok" and (errors or not results):
    status = "failed (" + ("; ".join(errors) if errors else "no result") + ")"
  out = {"id": row.id, "status": status, "wall_s": round(time.perf_counter() - start, 1),
         "limit_s": limit_s, "command": " ".join(command[1:]), "results": results}
  if status != "ok":
    with open(log_path) as f:
      out["log_tail"] = f.read().strip().splitlines()[-15:]
  return out


# ----------------------------------------------------------------------------- the table

def _get(done: dict, row_id: str, key: str):
  row = done.get(row_id)
  if not row or row["status"] != "ok":
    return None
  for result in row["results"]:
    if result.get(key) is not None:
      return result[key]
  return None


def _infer_lines(done: dict, prefix: str, model: str, peer_note: str, goal_peer, goal_best
                 ) -> list:
  """The table lines of `infer_rows`' rows: float32 and half against torch (`peer_note` after
  the peer's name), half against torch at its best."""
  lines = []
  for precision in ("float32", "half"):
    row_id = f"{prefix}{model}/{precision}"
    lines.append((f"inference {model} {precision}", _get(done, row_id, "jaxsr_median_s"),
                  f"torch {precision}{peer_note}", _get(done, row_id, "torch_median_s"),
                  goal_peer, _get(done, row_id, "jaxsr_compile_s"), None))
  lines.append((f"inference {model} half", _get(done, f"{prefix}{model}/half",
                                                "jaxsr_median_s"),
                "torch best fp16 (channels_last, compile)",
                _get(done, f"{prefix}{model}/half/torch_best", "torch_median_s"), goal_best,
                None, None))
  return lines


def comparisons(done: dict) -> list:
  """(label, jaxsr seconds, peer label, peer seconds, goal, jaxsr compile s, MFU) per line."""
  lines = []
  for model in TRAIN:
    for tag, peer_mode, peer, goal in (
        ("f32", "float32", "BasicSR float32", GOAL_PEER),
        ("bf16", "bf16_autocast", "BasicSR AMP bf16",
         GOAL_SWINIR_BF16 if model.startswith("swinir") else GOAL_PEER),
        ("bf16", "best", "torch best (channels_last, AMP bf16, compile)", GOAL_BEST)):
      jax_id = f"train/{model}/{tag}/jaxsr"
      lines.append((f"train {model} {tag}", _get(done, jax_id, "jaxsr_median_s"), peer,
                    _get(done, f"train/{model}/{peer_mode}/torch", "torch_median_s"), goal,
                    _get(done, jax_id, "jaxsr_compile_s"), _get(done, jax_id, "jaxsr_mfu")))
  for model in INFER:
    lines += _infer_lines(done, "infer/", model, "", GOAL_PEER, GOAL_BEST)
  lines.append(("degradation stage", _get(done, "degrade/jaxsr", "median_s"),
                "Real-ESRGAN feed_data", _get(done, "degrade/torch", "median_s"), None,
                _get(done, "degrade/jaxsr", "compile_s"), None))
  feed = _get(done, "degrade/torch", "median_s")
  for name, label, peer_row, peer in (
      ("realesrnet", "Real-ESRNet", "rrdbnet_b12", "feed_data + BasicSR RRDBNet step, AMP bf16"),
      ("realesrgan", "Real-ESRGAN", "realesrgan_b12",
       "feed_data + RealESRGANModel step (G + U-Net D), AMP bf16")):
    step = _get(done, f"realworld/{peer_row}/torch", "torch_median_s")
    lines.append((f"{label} step (degradations + step) bf16",
                  _get(done, f"realworld/{name}/jaxsr", "total_s"), peer,
                  feed + step if feed is not None and step is not None else None, GOAL_PEER,
                  _get(done, f"realworld/{name}/jaxsr", "compile_s"), None))
  for model in FAMILIES:  # no goal set for these (issue #19's goals are for its rows)
    for tag, peer_mode, peer in (
        ("f32", "float32", "torch float32 (spandrel)"),
        ("bf16", "bf16_autocast", "torch AMP bf16 (spandrel)"),
        ("bf16", "best", "torch best (channels_last, AMP bf16, compile)")):
      jax_id = f"family/train/{model}/{tag}/jaxsr"
      lines.append((f"train {model} {tag}", _get(done, jax_id, "jaxsr_median_s"), peer,
                    _get(done, f"family/train/{model}/{peer_mode}/torch", "torch_median_s"),
                    None, _get(done, jax_id, "jaxsr_compile_s"), _get(done, jax_id, "jaxsr_mfu")))
    lines += _infer_lines(done, "family/infer/", model, " (spandrel)", None, None)
  return lines


def markdown(done: dict, header: dict) -> str:
  def ms(s):
    return "–" if s is None else f"{1000 * s:.1f}"

  out = [f"# bench/gpu_suite.py ({'smoke' if header['smoke'] else 'full'})", "",
         f"Device: {header.get('device') or '?'}; command: `{header['command']}`", "",
         "| comparison | jaxsr ms | peer | peer ms | peer ÷ jaxsr | goal | met | "
         "jaxsr compile s | MFU |", "|---|---|---|---|---|---|---|---|---|"]
  for label, jax_s, peer, peer_s, goal, compile_s, mfu in comparisons(done):
    ratio = peer_s / jax_s if jax_s and peer_s else None
    met = "–" if ratio is None or goal is None else ("yes" if ratio >= goal else "**no**")
    out.append(f"| {label} | {ms(jax_s)} | {peer} | {ms(peer_s)} | "
               f"{'–' if ratio is None else f'{ratio:.2f}'} | "
               f"{'–' if goal is None else f'≥ {goal:g}'} | {met} | "
               f"{'–' if compile_s is None else compile_s} | "
               f"{'–' if mfu is None else f'{100 * mfu:.1f} %'} |")
  share = _get(done, "realworld/realesrnet/jaxsr", "pairs_share")
  gan_share = _get(done, "realworld/realesrgan/jaxsr", "pairs_share")
  out += ["", f"Degradation stage's share of the step: Real-ESRNet "
          f"{'–' if share is None else f'{100 * share:.1f} %'}, Real-ESRGAN "
          f"{'–' if gan_share is None else f'{100 * gan_share:.1f} %'} (goal ≤ 10 %).", "",
          "Rows not ok:", ""]
  bad = [r for r in done.values() if r["status"] != "ok"]
  out += [f"- `{r['id']}`: {r['status']}" for r in bad] or ["- none"]
  return "\n".join(out) + "\n"


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--out", required=True, help="folder for rows.jsonl, table.md, logs/")
  p.add_argument("--torch_python", default=sys.executable,
                 help="Python with torch, torchvision, basicsr 1.4.2, realesrgan 0.3.0")
  p.add_argument("--smoke", action="store_true",
                 help="tiny shapes and networks, torch on the CPU, one step per row")
  p.add_argument("--only", default="", help="comma list of row id prefixes to run")
  p.add_argument("--budget_s", type=float, default=420.0,
                 help="rows not started by then are skipped (issue #19: 7 minutes)")
  p.add_argument("--row_limit_s", type=float, default=0.0,
                 help="every row's time limit (0: each row's own)")
  p.add_argument("--warmup", type=int, default=3)
  p.add_argument("--steps", type=int, default=20)
  a = p.parse_args(argv)
  if a.smoke and not a.row_limit_s:
    a.row_limit_s = 600.0
  os.makedirs(os.path.join(a.out, "logs"), exist_ok=True)
  rows = build_rows(a)
  if a.only:
    prefixes = tuple(x for x in a.only.split(",") if x)
    rows = [r for r in rows if r.id.startswith(prefixes)]
  problem = torch_problem(a.torch_python) if any(r.needs_torch for r in rows) else ""
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [no_tensorflow_path(tempfile.mkdtemp(prefix="gpu_suite_no_tf_")), REPO]
      + [x for x in [os.environ.get("PYTHONPATH")] if x]))
  if a.smoke:
    env["JAX_PLATFORMS"] = env.get("JAX_PLATFORMS", "cpu")
  header = {"command": " ".join([os.path.relpath(__file__, REPO)] + (argv or sys.argv[1:])),
            "smoke": a.smoke, "device": None}
  start, done = time.perf_counter(), {}
  with open(os.path.join(a.out, "rows.jsonl"), "w") as jsonl:
    for row in rows:
      left = a.budget_s - (time.perf_counter() - start)
      if row.needs_torch and problem and "--sides=jaxsr,torch" in row.args:
        row = dataclasses.replace(row, args=[
            "--sides=jaxsr" if x == "--sides=jaxsr,torch" else x for x in row.args])
        problem_note = f"torch side skipped ({problem})"
      else:
        problem_note = ""
      if row.needs_torch and problem and not problem_note:
        result = {"id": row.id, "status": f"skipped ({problem})", "results": []}
      elif left <= 0:
        result = {"id": row.id, "status": f"skipped (suite budget {a.budget_s:.0f} s spent)",
                  "results": []}
      else:
        limit = min(a.row_limit_s or row.limit_s, max(left, 1.0))
        log = os.path.join(a.out, "logs", row.id.replace("/", "_") + ".log")
        result = run_row(row, a, limit, env, log)
        if problem_note:
          result["note"] = problem_note
      done[row.id] = result
      header["device"] = header["device"] or next(
          (r.get("device") or r.get("jaxsr_device") for r in result["results"]
           if r.get("device") or r.get("jaxsr_device")), None)
      jsonl.write(json.dumps(result) + "\n")
      jsonl.flush()
      print(json.dumps(result), flush=True)
  table = markdown(done, header)
  with open(os.path.join(a.out, "table.md"), "w") as f:
    f.write(table)
  print(table, file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
