"""A `gs://` workdir: validation sample grids, `--mode=eval` JSONs / SR PNGs, `report.md` and
`report.html` (with its crops) go through `etils.epath`'s non-local file-system API, with the
same bytes as in a local workdir, and nothing named `gs:` is created on the local disk.

The fake bucket: epath sends `gs://` paths to a backend (`_FakeGcs`) that maps them onto
TensorFlow's in-memory `ram://` file system through `tf.io.gfile`, the API epath uses for a real
bucket when TensorFlow is installed, and records every call. (epath cannot address `ram://`
itself: its URL schemes are gs, s3, az and hf.)
"""

import io
import os
import uuid

from etils.epath import backend as backend_lib
from etils.epath import gpath
import numpy as np
import pytest
from PIL import Image
import tensorflow as tf

from jaxsr import builders
from jaxsr import config_base
from jaxsr import evaluate
from jaxsr import report

from tests import utils

BUCKET_RUN = "gs://bucket/run"


class _FakeGcs(backend_lib._TfBackend):  # pylint: disable=protected-access
  """`gs://<path>` -> `ram://<root>/<path>` through tf.io.gfile; `calls`: (method, gs path)."""

  def __init__(self, root: str):
    self.root = f"ram://{root}/"
    self.calls = []

  def _ram(self, method: str, path) -> str:
    path = os.fspath(path)
    assert path.startswith("gs://"), path
    self.calls.append((method, path))
    return self.root + path[len("gs://"):]

  def _gs(self, path: str) -> str:
    assert path.startswith(self.root), path
    return "gs://" + path[len(self.root):]

  def open(self, path, mode):
    ram = self._ram(f"open:{mode}", path)
    if "w" in mode and tf.io.gfile.exists(ram):  # ram:// appends; a bucket object is replaced.
      tf.io.gfile.remove(ram)
    return super().open(ram, mode)

  def exists(self, path):
    return super().exists(self._ram("exists", path))

  def isdir(self, path):
    return super().isdir(self._ram("isdir", path))

  def listdir(self, path):
    return super().listdir(self._ram("listdir", path))

  def glob(self, path):
    return [self._gs(p) for p in super().glob(self._ram("glob", path))]

  def walk(self, top, **kwargs):
    for root, dirs, files in super().walk(self._ram("walk", top), **kwargs):
      yield self._gs(root), dirs, files

  def makedirs(self, path, **kwargs):
    super().makedirs(self._ram("makedirs", path), **kwargs)

  def mkdir(self, path, **kwargs):
    super().mkdir(self._ram("mkdir", path), **kwargs)

  def rmtree(self, path):
    super().rmtree(self._ram("rmtree", path))

  def remove(self, path):
    super().remove(self._ram("remove", path))

  def rename(self, path, dst):
    super().rename(self._ram("rename", path), self._ram("rename", dst))

  def replace(self, path, dst):
    super().replace(self._ram("replace", path), self._ram("replace", dst))

  def copy(self, path, dst, overwrite):
    super().copy(self._ram("copy", path), self._ram("copy", dst), overwrite)

  def stat(self, path):
    return super().stat(self._ram("stat", path))

  def written(self) -> set:
    """gs:// paths opened for writing."""
    return {path for method, path in self.calls if method.startswith("open:w")}

  def files(self, top: str) -> dict:
    """{path relative to `top`: bytes} of the files written under `top` (gs://...), read back
    with tf.io.gfile directly, not through epath. (Not by walking: TF's ram:// file system
    lists `eval/Set5_x2.json` also as `eval/Set5_x2/.json`.)"""
    found = {}
    for path in self.written():
      if path.startswith(top + "/"):
        with tf.io.gfile.GFile(self.root + path[len("gs://"):], "rb") as f:
          found[path[len(top) + 1:]] = f.read()
    return found


@pytest.fixture
def fake_gcs(monkeypatch, tmp_path):
  """epath's gs:// -> a fresh `_FakeGcs`; cwd = tmp_path (where local I/O on `gs://bucket/run`
  would make a folder `gs:`), the first cwd kept as `fake.local_dirs[1]`."""
  fake = _FakeGcs(uuid.uuid4().hex)
  original = gpath._GPath._backend  # pylint: disable=protected-access
  monkeypatch.setattr(gpath._GPath, "_backend", property(  # pylint: disable=protected-access
      lambda path: fake if path._uri_scheme == "gs" else original.fget(path)))
  fake.local_dirs = (str(tmp_path), os.getcwd())
  monkeypatch.chdir(tmp_path)
  return fake


def assert_no_local_url_folders(fake: _FakeGcs):
  """Nothing was written with local file I/O under a URL's name (`gs:/bucket/run/...`)."""
  for folder in fake.local_dirs:
    assert not {"gs:", "ram:"} & set(os.listdir(folder)), folder


def local_files(top) -> dict:
  found = {}
  for root, _, names in os.walk(top):
    for name in names:
      with open(os.path.join(root, name), "rb") as f:
        found[os.path.relpath(os.path.join(root, name), top)] = f.read()
  return found


def decode(data: bytes) -> np.ndarray:
  with Image.open(io.BytesIO(data)) as image:
    assert image.format == "PNG"
    return np.asarray(image)


def pil_file_bytes(pixels: np.ndarray, path) -> bytes:
  """What `Image.fromarray(pixels).save(path)` (the local writes before epath) writes."""
  Image.fromarray(pixels).save(path)
  with open(path, "rb") as f:
    return f.read()


class _Writer:
  def write_scalars(self, step, scalars):
    pass

  def write_images(self, step, images):
    pass


def test_validation_sample_grids_go_to_a_gs_workdir(fake_gcs, tmp_path):
  folder = utils.make_image_folder(tmp_path / "val", count=3, size=(36, 42), seed=2)
  val_sets = evaluate.load_eval_sets("folder:" + folder, scale=2)
  config = config_base.base_config()
  config.model.name, config.scale = "bicubic", 2
  sr_fn = evaluate.make_sr_fn(builders.make_apply_fn(builders.model_from_config(config)))
  run = lambda workdir: evaluate.validate(sr_fn, {}, val_sets, 2, 30, _Writer(), workdir,
                                          num_samples=2, is_chief=True)

  assert run(BUCKET_RUN) == run(str(tmp_path / "local"))
  assert_no_local_url_folders(fake_gcs)
  remote, local = fake_gcs.files(BUCKET_RUN), local_files(tmp_path / "local")
  assert remote == local and list(remote) == ["samples/val_step0000030.png"]
  assert fake_gcs.written() == {f"{BUCKET_RUN}/samples/val_step0000030.png"}
  grid = decode(remote["samples/val_step0000030.png"])
  assert grid.shape == (2 * 36, 4 * 36, 3)
  assert remote["samples/val_step0000030.png"] == pil_file_bytes(grid, tmp_path / "grid.png")


def test_eval_json_images_and_report_go_to_a_gs_workdir(fake_gcs, tmp_path):
  folder = utils.make_image_folder(tmp_path / "Set5" / "HR", count=2, size=(36, 42), seed=3)
  config = config_base.base_config()
  config.model.name = "bicubic"  # No checkpoint to restore.
  config.eval.datasets = "folder:" + folder
  config.eval.bicubic_baseline = True
  config.eval.save_images = True
  config.eval.noref = True  # The report's second table (non-ASCII headers).
  results = {}
  for workdir in (BUCKET_RUN, str(tmp_path / "local")):
    for scale in (2, 3):  # The second report reads both JSONs back.
      config.scale = scale
      results[workdir, scale] = evaluate.evaluate(config, workdir)["Set5"]
  assert_no_local_url_folders(fake_gcs)

  remote, local = fake_gcs.files(BUCKET_RUN), local_files(tmp_path / "local")
  expected = {"eval/Set5_x2.json", "eval/Set5_x3.json", "eval/report.md", "eval/report.html",
              "eval/Set5_x2/img00.png", "eval/Set5_x2/img01.png",
              "eval/Set5_x3/img00.png", "eval/Set5_x3/img01.png"}
  expected |= {f"eval/report_images/Set5_x{scale}/{kind}/{name}.png" for scale in (2, 3)
               for kind in ("bicubic", "sr", "hr") for name in ("img00", "img01")}
  assert set(remote) == expected and remote == local
  assert fake_gcs.written() == {f"{BUCKET_RUN}/{path}" for path in expected}
  assert ("listdir", f"{BUCKET_RUN}/eval") in fake_gcs.calls  # The report listed the bucket.
  for scale in (2, 3):
    assert results[BUCKET_RUN, scale] == results[str(tmp_path / "local"), scale]
    for name in ("img00", "img01"):
      data = remote[f"eval/Set5_x{scale}/{name}.png"]
      sr = decode(data)
      assert sr.shape == (36, 42, 3)  # 36 x 42 is a multiple of both scales.
      assert data == pil_file_bytes(sr, tmp_path / "sr.png")
  text = remote["eval/report.md"].decode("utf-8")
  assert text == report.write_report(str(tmp_path / "local" / "eval"))
  assert "report_images/Set5_x3/sr/img01.png" in remote["eval/report.html"].decode("utf-8")
  assert "| Set5 | x2 |" in text and "| Set5 | x3 |" in text and "aliasing (°)" in text
