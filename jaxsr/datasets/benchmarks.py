"""tensorflow-datasets builders for the SR benchmark test sets.

  name         split       images  online source
  set5         test             5  EDSR benchmark.tar (https://cv.snu.ac.kr/research/EDSR/)
  set14        test            14  EDSR benchmark.tar
  b100         test           100  EDSR benchmark.tar (BSD100)
  urban100     test           100  EDSR benchmark.tar
  manga109     test           109  none: manual only (license on request, http://www.manga109.org)
  div2k_valid  validation     100  DIV2K_valid_HR.zip (https://data.vision.ee.ethz.ch/cvl/DIV2K/)

Importing `jaxsr.datasets` registers them. Each example has `hr`, the image file's bytes as
distributed (grayscale, 16-bit or RGBA PNGs are stored unchanged: `jaxsr.data.sources` checks,
converts and flags them exactly as for `folder:` data; `tfds.load` decodes them to uint8
`[H, W, 3]`), and `name`, the file name stem (`baby`, `img_001`, `0801`). Examples are in name
order.

Prepare a set once (jaxsr never downloads at run time):
  Online:   python -c "import jaxsr.datasets, tensorflow_datasets as tfds;
                       tfds.builder('set5', data_dir=DIR).download_and_prepare()"
            or  tfds build set5 --imports jaxsr.datasets [--data_dir=DIR]
            (with tfds 4.9.10 the `tfds` CLI also needs `pip install apache-beam mlcroissant`).
  Offline:  put the archive (benchmark.tar for set5/set14/b100/urban100, DIV2K_valid_HR.zip for
            div2k_valid) or a folder of HR images in the manual dir, <data_dir>/downloads/manual
            unless set (`--manual_dir=`, `tfds.download.DownloadConfig(manual_dir=...)`). A folder
            is found as <Name>/, <Name>/HR/ or benchmark/<Name>/HR/ there (case-insensitive;
            Name: Set5, Set14, B100 or BSD100 or BSDS100, Urban100, Manga109, DIV2K_valid_HR or
            DIV2K_valid), e.g.
              ~/tensorflow_datasets/downloads/manual/Set5/HR/baby.png
            Images: .png .jpg .jpeg .bmp directly in that folder (LR_bicubic/... is ignored).
            The commands above then use it without any download, and evaluation
            (`--config.eval.datasets=set5`, `input_pipeline.load_eval_images`) prepares the set
            from there by itself (`prepare_if_manual`).
  Manga109: offline only; ask for it at http://www.manga109.org/en/download.html.
A set whose image count differs from the published one is still built, with a warning.
"""

import dataclasses
import os
from typing import Optional, Tuple

from absl import logging
import tensorflow_datasets as tfds

from jaxsr.data.sources import IMAGE_EXTENSIONS

_EDSR_URL = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"
_DIV2K_URL = "http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip"


@dataclasses.dataclass(frozen=True)
class BenchmarkSet:
  """What differs between the benchmark builders."""
  folders: Tuple[str, ...]  # Folder name, then aliases (matched case-insensitively).
  count: int  # Published number of images.
  url: str = ""  # Archive to download ('' = manual only); its file name is also manual data.
  split: str = "test"
  homepage: str = ""

  @property
  def archive(self) -> str:
    """File name of the archive (`benchmark.tar`), '' if none."""
    return self.url.rsplit("/", 1)[-1]

  def manual_hint(self, manual_dir: str) -> str:
    """One line: where in `manual_dir` the HR images or the archive are looked for."""
    name, *aliases = self.folders
    alias = f"; {name} may also be called {' or '.join(aliases)}" if aliases else ""
    hint = (f"Put the {name} HR images in {os.path.join(manual_dir, name, '')}, "
            f"{name}/HR/ or benchmark/{name}/HR/ there (case-insensitive{alias})")
    if self.archive:
      return f"{hint}, or {self.archive} ({self.url}) in {manual_dir}."
    return f"{hint}; {name} has no free download: ask for it at {self.homepage}."


class BenchmarkBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """HR images of one benchmark set from the manual dir, else from its archive's URL."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  SET: BenchmarkSet  # Set by each subclass.

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    cls.MANUAL_DOWNLOAD_INSTRUCTIONS = (
        cls.SET.manual_hint("<manual_dir>") + " <manual_dir> is <data_dir>/downloads/manual "
        "unless set (`tfds build --manual_dir=...`).")

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=type(self).__doc__, homepage=self.SET.homepage,
        features=tfds.features.FeaturesDict({
            "hr": tfds.features.Image(shape=(None, None, 3)),
            "name": tfds.features.Text()}),
        disable_shuffling=True)  # Examples stay in key (= name) order.

  def _split_generators(self, dl_manager):
    try:
      manual_dir = os.fspath(dl_manager.manual_dir)
    except AssertionError:  # No manual dir, or an empty one (the error says how to fill it).
      if not self.SET.url:
        raise
      manual_dir = ""
    found = find_manual_data(self.SET, manual_dir) if manual_dir else None
    if found is None and not self.SET.url:
      raise ValueError(f"No {self.name} images in {manual_dir}. "
                       f"{self.SET.manual_hint(manual_dir)}")
    if found is None:
      try:
        extracted = dl_manager.download_and_extract(self.SET.url)
      except Exception as e:  # pylint: disable=broad-except  # Offline, moved, ...
        raise ValueError(f"Cannot download {self.SET.url} ({type(e).__name__}: {e}). "
                         f"{self.SET.manual_hint(manual_dir or '<manual_dir>')}") from e
      folder = _find_image_folder(self.SET, os.fspath(extracted))
    elif os.path.isfile(found):
      folder = _find_image_folder(self.SET, os.fspath(dl_manager.extract(found)))
    else:
      folder = found
    if folder is None:
      raise ValueError(f"The {self.SET.archive} archive has no {self.SET.folders[0]} images.")
    return {self.SET.split: self._generate_examples(folder)}

  def _generate_examples(self, folder: str):
    files = {}
    for file in _image_files(folder):
      stem = os.path.splitext(file)[0]
      if stem in files:
        logging.warning("%s: skipping %s, same name as %s.", self.name, file, files[stem])
      else:
        files[stem] = file
    if len(files) != self.SET.count:
      logging.warning("%s: found %d images in %s, expected %d (the published set).",
                      self.name, len(files), folder, self.SET.count)
    for key, stem in enumerate(sorted(files)):
      yield key, {"hr": os.path.join(folder, files[stem]), "name": stem}


class Set5(BenchmarkBuilder):
  """Set5 (Bevilacqua et al., BMVC 2012): 5 HR test images."""
  SET = BenchmarkSet(("Set5",), 5, _EDSR_URL,
                     homepage="http://people.rennes.inria.fr/Aline.Roumy/results/SR_BMVC12.html")


class Set14(BenchmarkBuilder):
  """Set14 (Zeyde et al., 2010): 14 HR test images."""
  SET = BenchmarkSet(("Set14",), 14, _EDSR_URL,
                     homepage="https://sites.google.com/site/romanzeyde/research-interests")


class B100(BenchmarkBuilder):
  """B100 / BSD100: the 100 test images of BSD300 (Martin et al., ICCV 2001)."""
  SET = BenchmarkSet(("B100", "BSD100", "BSDS100"), 100, _EDSR_URL,
                     homepage="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/")


class Urban100(BenchmarkBuilder):
  """Urban100 (Huang et al., CVPR 2015): 100 HR images of buildings."""
  SET = BenchmarkSet(("Urban100",), 100, _EDSR_URL,
                     homepage="https://github.com/jbhuang0604/SelfExSR")


class Manga109(BenchmarkBuilder):
  """Manga109 (Matsui et al., 2017): 109 images, one per manga volume; manual download only."""
  SET = BenchmarkSet(("Manga109",), 109, homepage="http://www.manga109.org/en/download.html")


class Div2kValid(BenchmarkBuilder):
  """DIV2K validation HR images 0801-0900 (Agustsson and Timofte, NTIRE 2017)."""
  SET = BenchmarkSet(("DIV2K_valid_HR", "DIV2K_valid"), 100, _DIV2K_URL, split="validation",
                     homepage="https://data.vision.ee.ethz.ch/cvl/DIV2K/")


BUILDERS = {cls.name: cls for cls in (Set5, Set14, B100, Urban100, Manga109, Div2kValid)}


def find_manual_data(benchmark: BenchmarkSet, manual_dir: str) -> Optional[str]:
  """The HR image folder, else the archive file, of `benchmark` in `manual_dir`; None if neither."""
  folder = _find_image_folder(benchmark, manual_dir)
  if folder is None and benchmark.archive:
    archive = _resolve(manual_dir, (benchmark.archive,))
    return archive if archive and os.path.isfile(archive) else None
  return folder


def prepare_if_manual(name: str, data_dir: str, manual_dir: str = "") -> bool:
  """Prepares jaxsr benchmark `name` from manual data in `manual_dir`, never downloading.

  Args:
    name: tfds name (`set5`, ...; a `:version` may follow).
    data_dir: tfds data_dir ('' = tfds default).
    manual_dir: '' = `<data_dir>/downloads/manual`.

  Returns:
    True if the dataset is prepared (before or now); False if `name` is not a jaxsr benchmark
    or it is not prepared and `manual_dir` holds no data for it.
  """
  builder = _builder(name, data_dir)
  if builder is None:
    return False
  if builder.is_prepared():
    return True
  manual_dir = manual_dir or _default_manual_dir(builder)
  if find_manual_data(builder.SET, manual_dir) is None:
    return False
  logging.info("Preparing %s in %s from %s.", name, builder.data_dir, manual_dir)
  try:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  except OSError:  # Another process (multi-host eval) may have prepared it meanwhile.
    if not tfds.builder(name, data_dir=data_dir or None).is_prepared():
      raise
  return True


def manual_data_hint(name: str, data_dir: str = "", manual_dir: str = "") -> str:
  """One line: how to provide jaxsr benchmark `name` (manual data, download); '' for others."""
  builder = _builder(name, data_dir)
  if builder is None:
    return ""
  hint = builder.SET.manual_hint(manual_dir or _default_manual_dir(builder))
  if not builder.SET.url:
    return hint
  data_dir_arg = f", data_dir={data_dir!r}" if data_dir else ""
  data_dir_flag = f" --data_dir={data_dir}" if data_dir else ""
  return (f"{hint} Or prepare it online once: `python -c \"import jaxsr.datasets, "
          f"tensorflow_datasets as tfds; tfds.builder({name!r}{data_dir_arg})"
          f".download_and_prepare()\"` or `tfds build {name}{data_dir_flag} "
          "--imports jaxsr.datasets` (the tfds CLI needs apache-beam and mlcroissant).")


def _builder(name: str, data_dir: str) -> Optional[BenchmarkBuilder]:
  if name.partition(":")[0] not in BUILDERS:
    return None
  return tfds.builder(name, data_dir=data_dir or None)


def _default_manual_dir(builder: BenchmarkBuilder) -> str:
  return os.path.join(os.fspath(builder.data_dir_root), "downloads", "manual")


def _find_image_folder(benchmark: BenchmarkSet, root: str) -> Optional[str]:
  """First of <Name>/, <Name>/HR/, benchmark/<Name>/HR/ (any alias) under `root` with images."""
  for name in benchmark.folders:
    for parts in ((name,), (name, "HR"), ("benchmark", name, "HR")):
      folder = _resolve(root, parts)
      if folder and _image_files(folder):
        return folder
  return None


def _resolve(root: str, parts) -> Optional[str]:
  """`root/parts...`, each part matched case-insensitively (exact case first); None if absent."""
  path = root
  for part in parts:
    if not os.path.isdir(path):
      return None
    names = [n for n in sorted(os.listdir(path)) if n.lower() == part.lower()]
    if not names:
      return None
    path = os.path.join(path, part if part in names else names[0])
  return path


def _image_files(folder: str):
  """Sorted names of the image files directly in `folder`."""
  if not os.path.isdir(folder):
    return []
  return sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)
                and os.path.isfile(os.path.join(folder, n)))
