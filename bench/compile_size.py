"""Size of a config's train-step program as lowered for a GPU, and its CPU compile time (#19).

  python bench/compile_size.py                                  # RRDBNet 64x23 x4, batch 16
  python bench/compile_size.py --config=configs/swinir_classical_x4.py --batch=0 --patch=0
  python bench/compile_size.py --set=model.scan_blocks=False    # the unrolled trunk
  python bench/compile_size.py --config=configs/msrresnet_x4.py --cpu_compile=False
  python bench/compile_size.py --config=configs/rcan_x4.py --batch=2 --patch=48 --init

Needs no GPU: the jitted train step (the PSNR / GAN step of `builders.train_step_from_config`;
for a real-world config the step on made pairs, without the degradation stage) is traced on
abstract arguments and lowered for `--platform` (`lowering_platforms`). Counts, in that
StableHLO module (ops inside regions included): `ops` (all), `convolution`, `conv_shapes`
(distinct convolutions: operand and result types, window, dimension numbers: what a GPU
autotunes), `dot_general`, `custom_call`, `case` (`platform_dependent` leaves one single-branch
`case` per call), `while` (scans, fori_loops), `funcs`; from the unoptimized HLO module (the
StableHLO converted, before any XLA pass): `hlo_instructions`, `hlo_conditional`, `hlo_while`,
`hlo_convolution`, `hlo_computations`. Then, unless --cpu_compile=False, the seconds to lower
(`cpu_lower_s`) and compile (`cpu_compile_s`) the same step for the host CPU, and that program's
temporary buffers (`cpu_temp_mib`, XLA's memory analysis: activations kept for the backward pass
and scratch; what `model.remat` cuts). With --init, the same for the train state's init program
(`measure_init`). One JSON line per config.
"""

import ast
import collections
import json
import re
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

from jaxsr import builders
from jaxsr import config_base
from jaxsr import sharding

FLAGS = flags.FLAGS

_OP = re.compile(r'^\s*(?:%[^=]+=\s*)?"?((?:stablehlo|chlo|mhlo|func|sdy|shardy)\.[a-z_.]+)')
_HLO_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*.*?\s([a-z][a-z0-9\-]*)\(")
_HLO_COMPUTATION = re.compile(r"(?:ENTRY\s+)?%?([\w.\-]+)")
_HLO_LOOP_PARTS = re.compile(r"(?:body|condition)=%?([\w.\-]+)")
_HLO_CALLED = re.compile(r"(?:body|condition|calls|to_apply)=%?([\w.\-]+)")
_HLO_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}")
_COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")


def _set(config, assignment: str) -> None:
  key, _, text = assignment.partition("=")
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  *parents, leaf = key.split(".")
  node = config
  for name in parents:
    node = node[name]
  with node.unlocked():
    node[leaf] = value


def stablehlo_counts(text: str) -> dict:
  """Op counts of a StableHLO module's text (see the module docstring)."""
  ops = collections.Counter()
  shapes = set()
  for line in text.splitlines():
    match = _OP.match(line)
    if not match:
      continue
    op = match.group(1)
    ops[op] += 1
    if op == "stablehlo.convolution":
      shapes.add(re.sub(r"%[\w#.\-]+", "", line.split("stablehlo.convolution", 1)[1]))
  return {"ops": sum(ops.values()), "convolution": ops["stablehlo.convolution"],
          "conv_shapes": len(shapes), "dot_general": ops["stablehlo.dot_general"], "custom_call": ops["stablehlo.custom_call"],
          "case": ops["stablehlo.case"], "while": ops["stablehlo.while"],
          "funcs": ops["func.func"]}


def hlo_computations(text: str) -> dict[str, list[str]]:
  """An HLO module's text -> its computations' lines (after the header), by name."""
  computations, lines = {}, None
  for line in text.splitlines():
    if line.rstrip().endswith("{") and not line.startswith(" "):
      lines = computations.setdefault(_HLO_COMPUTATION.match(line).group(1), [])
    elif lines is not None:
      lines.append(line)
  return computations


def _opcodes(lines: list[str]) -> list[str]:
  return [match.group(1) for match in map(_HLO_INSTR.match, lines) if match]


def hlo_counts(text: str) -> dict:
  """Instruction counts of an HLO module's text."""
  computations = hlo_computations(text)
  ops = collections.Counter(op for lines in computations.values() for op in _opcodes(lines))
  return {"hlo_instructions": sum(ops.values()), "hlo_conditional": ops["conditional"],
          "hlo_while": ops["while"], "hlo_convolution": ops["convolution"],
          "hlo_computations": len(computations)}


def hlo_collectives(text: str) -> dict:
  """Cross-device collectives of an HLO module's text: all of them, and those in a loop (in a
  `while`'s body or condition, or in a computation they call). XLA:CPU does not keep the
  latter in order with the others (`sharding.cpu_data_parallel`)."""
  computations = hlo_computations(text)
  in_loops = set()
  todo = [name for lines in computations.values() for line in lines
          for name in _HLO_LOOP_PARTS.findall(line)]
  while todo:
    name = todo.pop()
    if name not in in_loops:
      in_loops.add(name)
      for line in computations.get(name, []):
        todo += _HLO_CALLED.findall(line)
        todo += [c.strip().lstrip("%") for group in _HLO_BRANCHES.findall(line)
                 for c in group.split(",")]
  count = lambda names: sum(op.removesuffix("-start") in _COLLECTIVES
                            for name in names for op in _opcodes(computations[name]))
  return {"collectives": count(computations),
          "collectives_in_loops": count(in_loops & computations.keys())}


def step_and_args(config):
  """(jitted train step, abstract (state, batch, loss_variables))."""
  if config_base.is_gan(config) and not config.loss.vgg_weights:
    config.loss.perceptual_weight = 0.0  # No VGG weights offline: G and D only.
    config.loss.style_weight = 0.0
  config_base.validate(config, jax.device_count())
  mesh = sharding.create_mesh()
  comps = builders.components_from_config(config)
  state = builders.abstract_state(config, comps, mesh)
  step_fn, loss_variables = builders.train_step_from_config(config, comps)
  rep, split = sharding.replicated(mesh), sharding.batch_sharding(mesh)
  step = jax.jit(step_fn, in_shardings=(rep, split, rep), out_shardings=(rep, rep),
                 donate_argnums=(0,))
  hr, lr = config.data.gt_size, config.data.gt_size // config.scale
  batch = {"lr": jax.ShapeDtypeStruct((config.batch_size, lr, lr, 3), jnp.float32),
           "hr": jax.ShapeDtypeStruct((config.batch_size, hr, hr, 3), jnp.float32)}
  return step, (state, batch, loss_variables)


def measure(config, platform: str, cpu_compile: bool) -> dict:
  step, args = step_and_args(config)
  traced = step.trace(*args)
  lowered = traced.lower(lowering_platforms=(platform,))
  result = {**stablehlo_counts(lowered.as_text()),
            **hlo_counts(lowered.compiler_ir("hlo").as_hlo_text())}
  if cpu_compile:
    start = time.perf_counter()
    cpu_lowered = step.trace(*args).lower()
    result["cpu_lower_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    compiled = cpu_lowered.compile()
    result["cpu_compile_s"] = round(time.perf_counter() - start, 2)
    memory = compiled.memory_analysis()
    if memory is not None:
      result["cpu_temp_mib"] = round(memory.temp_size_in_bytes / 2**20, 1)
  return result


def measure_init(config, platform: str, cpu_compile: bool) -> dict:
  """The train state's init program (`builders.build_state`'s: the generator's and
  discriminator's `init` and the optimizer states) as lowered for `platform`: `init_ops`,
  `init_rng_calls` (calls of JAX's random-number functions), then its CPU compile seconds."""
  mesh = sharding.create_mesh()
  comps = builders.components_from_config(config)
  init = jax.jit(builders.state_init_fn(config, comps),
                 out_shardings=sharding.replicated(mesh))
  key = jax.random.key(config.seed)
  text = init.trace(key).lower(lowering_platforms=(platform,)).as_text()
  result = {"init_ops": stablehlo_counts(text)["ops"],
            "init_rng_calls": len(re.findall(r"call @_(?:threefry|uniform|normal|truncated)",
                                             text))}
  if cpu_compile:
    start = time.perf_counter()
    init.trace(key).lower().compile()
    result["cpu_init_compile_s"] = round(time.perf_counter() - start, 2)
  return result


def main(_):
  for path in FLAGS.config:
    config = config_base.config_from_file(path)
    if FLAGS.batch:
      config.batch_size = FLAGS.batch
    if FLAGS.patch:
      config.data.gt_size = FLAGS.patch * config.scale
    if FLAGS.dtype:
      config.dtype = FLAGS.dtype
    for assignment in FLAGS.set:
      _set(config, assignment)
    options = {k: v for k, v in config.model.items() if k != "name"}
    print(json.dumps({
        "config": path, "model": config.model.name, "options": {
            k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
        "batch": config.batch_size, "lr_patch": config.data.gt_size // config.scale,
        "dtype": config.dtype, "platform": FLAGS.platform, "jax": jax.__version__,
        **measure(config, FLAGS.platform, FLAGS.cpu_compile),
        **(measure_init(config, FLAGS.platform, FLAGS.cpu_compile) if FLAGS.init else {})}),
          flush=True)


def _define_flags():
  """The command line's flags (defined when run as a script: tests import the counters)."""
  flags.DEFINE_multi_string("config", ["configs/rrdbnet_psnr_x4.py"], "Config file(s).")
  flags.DEFINE_integer("batch", 16, "Global batch; 0: the config's.")
  flags.DEFINE_integer("patch", 32, "LR patch side (HR = patch * scale); 0: the config's.")
  flags.DEFINE_string("dtype", "", "Computation dtype (float32 | bfloat16); '': the config's.")
  flags.DEFINE_multi_string("set", [], "Config overrides 'a.b=value' (a Python literal or a "
                            "string); may add model options, e.g. model.scan_blocks=False.")
  flags.DEFINE_string("platform", "cuda", "Platform the program is lowered for and counted.")
  flags.DEFINE_bool("cpu_compile", True, "Also time lowering and compiling the step on the CPU.")
  flags.DEFINE_bool("init", False, "Also measure the train state's init program (init_ops, "
                    "init_rng_calls, cpu_init_compile_s).")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
