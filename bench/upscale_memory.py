"""Peak RSS and time of `python -m jaxsr.upscale` on one large image; prints JSON.

An RRDBNet with random weights is saved as a run in a temporary workdir; the CLI upscales a
random (or `--image`) picture in a subprocess, whose peak RSS is read with
`getrusage(RUSAGE_CHILDREN)`. Tiling bounds memory by the tile, not the image.

  python bench/upscale_memory.py                           # 1024x1024 -> 4096x4096, RRDBNet 64x23
  python bench/upscale_memory.py --size=128 --num_block=2  # quick smoke run
"""

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from jaxsr import builders
from jaxsr import checkpointing
from jaxsr import config_base
from jaxsr import sharding

FLAGS = flags.FLAGS
flags.DEFINE_integer("size", 1024, "Side of the random square input image.")
flags.DEFINE_string("image", "", "Upscale this image file instead of a random one.")
flags.DEFINE_integer("scale", 4, "RRDBNet upscale factor.")
flags.DEFINE_integer("num_feat", 64, "RRDBNet features.")
flags.DEFINE_integer("num_block", 23, "RRDBNet blocks.")
flags.DEFINE_integer("tile", 256, "--tile of the CLI (0: whole image).")
flags.DEFINE_integer("tile_pad", 10, "--tile_pad of the CLI.")
flags.DEFINE_bool("bf16", False, "--bf16 of the CLI.")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def save_random_run(workdir: str) -> None:
  """config.json and a step-0 checkpoint of a randomly initialised RRDBNet."""
  config = config_base.base_config()
  config.model.name, config.scale = "rrdbnet", FLAGS.scale
  config.model.num_feat, config.model.num_block = FLAGS.num_feat, FLAGS.num_block
  config.data.gt_size = 16 * FLAGS.scale  # Only the init's dummy input.
  state = builders.build_state(config, builders.components_from_config(config),
                               sharding.create_mesh())
  checkpointing.save(checkpointing.create_manager(workdir), 0, state, {"next_step": 0})
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as tmp:
    save_random_run(tmp)
    source = FLAGS.image
    if not source:
      source = os.path.join(tmp, "input.png")
      rng = np.random.default_rng(0)
      Image.fromarray(rng.integers(0, 256, (FLAGS.size, FLAGS.size, 3), np.uint8)).save(source)
    with Image.open(source) as image:
      width, height = image.size
    output = os.path.join(tmp, "output.png")
    command = [sys.executable, "-m", "jaxsr.upscale", f"--workdir={tmp}", f"--input={source}",
               f"--output={output}", f"--tile={FLAGS.tile}", f"--tile_pad={FLAGS.tile_pad}",
               f"--bf16={FLAGS.bf16}"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
      sys.exit(f"upscale failed:\n{result.stderr[-3000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux.
    with Image.open(output) as image:
      out_size = list(image.size)
    logged = re.search(r"\) in ([0-9.]+) s", result.stderr)
    tiles = 1 if FLAGS.tile <= 0 else -(-height // FLAGS.tile) * -(-width // FLAGS.tile)
  print(json.dumps({
      "peak_rss_gib": round(peak_kib / 2**20, 3), "seconds": round(seconds, 1),
      "upscale_s": float(logged.group(1)) if logged else None, "tiles": tiles,
      "input": [width, height], "output": out_size, "model": "rrdbnet",
      "num_feat": FLAGS.num_feat, "num_block": FLAGS.num_block, "scale": FLAGS.scale,
      "tile": FLAGS.tile, "tile_pad": FLAGS.tile_pad, "bf16": FLAGS.bf16}))


if __name__ == "__main__":
  app.run(main)
