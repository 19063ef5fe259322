"""The per-user model cache: `model_workdir(id)` -> a jaxsr workdir of a released model.

Layout, under `cache_root()` (`$JAXSR_CACHE`, else `$XDG_CACHE_HOME/jaxsr`, else
`~/.cache/jaxsr`):

  models/<id>/<file>.pth       the weights, verified (size and sha256 of the registry entry)
  models/<id>/workdir/         `jaxsr.convert`'s workdir of them (checkpoints/0, config.json,
                               config.py) and `source.json` (the entry and the weights' sha256)
  models/<id>/.licence_shown   written once the model's licence has been printed

The workdir is written under a temporary name and renamed when complete, so an interrupted
conversion leaves nothing that looks usable, and two processes converting at once both end with
one complete workdir. A cached workdir whose `source.json` names the entry's sha256 is used as
it is: no request, no conversion. Deleting `models/<id>` (or the whole cache) is always safe.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import sys
import tempfile
from typing import List, Optional, Sequence

from absl import logging

from jaxsr.hub import download
from jaxsr.hub import registry as registry_lib

ENV = "JAXSR_CACHE"
PREFIX = "model:"  # `--config.init_from=model:<id>`.
SOURCE_FILE = "source.json"
_LICENCE_MARK = ".licence_shown"


def cache_root(environ=os.environ) -> str:
  """The cache directory (module docstring)."""
  if environ.get(ENV):
    return os.path.abspath(os.path.expanduser(environ[ENV]))
  base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "jaxsr")


def model_dir(model_id: str, root: Optional[str] = None) -> str:
  """`<root>/models/<id>`; the id must be a plain name (no path separators)."""
  if not model_id or model_id in (".", "..") or "/" in model_id or "\\" in model_id:
    raise registry_lib.RegistryError(f"model id {model_id!r} is not a plain name")
  return os.path.join(root or cache_root(), "models", model_id)


def _cached_workdir(folder: str, sha256: Optional[str]) -> Optional[str]:
  """`<folder>/workdir` if it was converted from weights with this sha256."""
  workdir = os.path.join(folder, "workdir")
  try:
    with open(os.path.join(workdir, SOURCE_FILE)) as f:
      source = json.load(f)
  except (OSError, ValueError):
    return None
  return workdir if source.get("sha256") == sha256 else None


def show_licence_once(entry: registry_lib.ModelEntry, folder: str) -> None:
  """Prints the entry's author and licence on stderr the first time the model is used."""
  mark = os.path.join(folder, _LICENCE_MARK)
  if os.path.exists(mark):
    return
  print(f"{entry.id}: '{entry.name}' by {entry.author}, licence {entry.license} "
        f"(from {entry.origin}); check that your use is allowed.", file=sys.stderr, flush=True)
  os.makedirs(folder, exist_ok=True)
  with open(mark, "w") as f:
    f.write(entry.license + "\n")


def _weights_file(entry: registry_lib.ModelEntry, resource: registry_lib.Resource,
                  folder: str, local_hint: str) -> str:
  """The verified weights in the cache, downloaded from the first direct URL if missing."""
  direct = [url for url in resource.urls if download.is_direct(url)]
  if not direct:
    raise download.DownloadError(
        f"model {entry.id}: its weights are only on a page a program cannot download from "
        f"({resource.urls[0]}): download the .{resource.type} there and pass {local_hint}")
  if not resource.sha256:
    raise download.DownloadError(
        f"model {entry.id}: the registry gives no sha256, so a download cannot be verified; "
        f"download it from {direct[0]} and pass {local_hint}")
  path = os.path.join(folder, download.file_name(direct[0], f"{entry.id}.{resource.type}"))
  if os.path.isfile(path):
    try:
      download.verify(path, resource.size, resource.sha256, path)
      return path
    except download.DownloadError:
      os.remove(path)  # Replaced by a verified download below.
  errors = []
  for url in direct:
    try:
      return download.fetch(url, path, resource.size, resource.sha256, local_hint)
    except download.DownloadError as e:
      if "sha256" in str(e) or len(direct) == 1:
        raise
      errors.append(str(e))
  raise download.DownloadError(" | ".join(errors))


def _convert(entry: registry_lib.ModelEntry, weights: str, sha256: Optional[str],
             folder: str) -> str:
  """Converts `weights` into `<folder>/workdir` (temporary name, then renamed)."""
  from jaxsr import convert  # pylint: disable=g-import-not-at-top  (jax, orbax: only here)
  from jaxsr.interop import load as interop_load  # pylint: disable=g-import-not-at-top
  loaded = interop_load.load_variables(weights, interop_load.AUTO)
  if loaded.arch not in entry.jaxsr_archs:
    raise registry_lib.RegistryError(
        f"model {entry.id}: the registry says '{entry.architecture}' but {weights} holds "
        f"{loaded.summary}")
  scale = loaded.hparams.get("scale", entry.scale)
  if int(scale) != entry.scale:
    raise registry_lib.RegistryError(
        f"model {entry.id}: the registry says x{entry.scale} but {weights} is x{scale}")
  logging.info("%s: %s", entry.id, loaded.summary)
  staging = tempfile.mkdtemp(prefix="workdir.tmp-", dir=folder)
  try:
    convert.write_workdir(staging, loaded.arch, loaded.hparams, loaded.variables,
                          f"{entry.id} ({entry.origin})")
    with open(os.path.join(staging, SOURCE_FILE), "w") as f:
      json.dump({"id": entry.id, "sha256": sha256, "weights": os.path.basename(weights),
                 "entry": dataclasses.asdict(entry)}, f, indent=2)
    workdir = os.path.join(folder, "workdir")
    shutil.rmtree(workdir, ignore_errors=True)  # Stale: converted from other weights.
    try:
      os.rename(staging, workdir)
    except OSError:  # Another process renamed its complete workdir first.
      if _cached_workdir(folder, sha256) is None:
        raise
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return os.path.join(folder, "workdir")


@contextlib.contextmanager
def _locked(folder: str):
  """Holds `<folder>/.lock` (one download and conversion at a time per model and machine)."""
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, ".lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def model_workdir(model_id: str, registries: Sequence[str] = (), weights: str = "",
                  local_hint: str = "--weights=<file>", root: Optional[str] = None) -> str:
  """The cached jaxsr workdir of model `model_id`, downloading and converting it if needed.

  Args:
    model_id: an OpenModelDB id found in the built-in registry or in `registries`.
    registries: extra `--model_registry` sources (`registry.read_registry`).
    weights: a local copy of the weights to use instead of downloading (checked against the
      entry's size and sha256 when it gives them).
    local_hint: how the caller's user gives a local copy (named in download errors).
    root: the cache directory (default `cache_root()`).

  Raises:
    RegistryError / DownloadError (ValueErrors of one line): unknown id, architecture jaxsr
    does not run, no downloadable file, offline, HTTP error, size or sha256 mismatch.
  """
  entry = registry_lib.Registry(registries).lookup(model_id)
  resource = entry.weights()
  folder = model_dir(entry.id, root)
  cached = _cached_workdir(folder, resource.sha256)
  if cached and not weights:
    show_licence_once(entry, folder)
    return cached
  if weights:
    if not os.path.isfile(weights):
      raise FileNotFoundError(f"{local_hint.split('=')[0]}={weights}: no such file")
    try:
      download.verify(weights, resource.size, resource.sha256, weights)
    except download.DownloadError as e:
      raise download.DownloadError(f"{e}: not the weights of model {entry.id}") from None
  with _locked(folder):  # Another process may have finished it meanwhile.
    cached = _cached_workdir(folder, resource.sha256)
    path = weights or (None if cached else _weights_file(entry, resource, folder, local_hint))
    show_licence_once(entry, folder)
    return cached or _convert(entry, path, resource.sha256, folder)


@dataclasses.dataclass(frozen=True)
class Listing:
  """A row of `--list_models`."""
  id: str
  architecture: str
  scale: int
  license: str
  cached: bool
  runs: bool


def list_models(registries: Sequence[str] = (), root: Optional[str] = None) -> List[Listing]:
  """Every entry of the registries, with whether its converted workdir is cached."""
  rows = []
  for entry in registry_lib.Registry(registries).entries():
    sha = next((r.sha256 for r in entry.resources if r.is_weights), None)
    try:
      cached = _cached_workdir(model_dir(entry.id, root), sha) is not None
    except registry_lib.RegistryError:
      cached = False
    rows.append(Listing(entry.id, entry.architecture, entry.scale, entry.license, cached,
                        bool(entry.jaxsr_archs)))
  return rows


def format_listing(rows: Sequence[Listing]) -> str:
  """`rows` as an aligned text table (id, architecture, scale, licence, cached)."""
  table = [("id", "architecture", "scale", "licence", "cached")]
  table += [(r.id, r.architecture if r.runs else f"{r.architecture} (not run by jaxsr)",
             f"x{r.scale}", r.license, "yes" if r.cached else "no") for r in rows]
  widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
  return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                   for row in table)
