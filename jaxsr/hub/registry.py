"""Model entries in OpenModelDB's format (`data/models/<id>.json` of
OpenModelDB/open-model-database), looked up by id.

An entry: `name`, `author` (a name or a list), `license`, `architecture` (OpenModelDB's id:
'esrgan', 'compact', 'swinir', ...), `scale`, and `resources`: each with `platform`
('pytorch', 'onnx', ...), `type` ('pth', 'safetensors', 'onnx', ...), `size` (bytes),
`sha256` (hex) and `urls`. jaxsr reads the weights of a `pth` / `safetensors` resource.

Sources, searched in order (the first that has an id wins):
  1. the built-in registry, `jaxsr/hub/models.json` (official and popular releases with direct
     URLs whose architecture jaxsr runs; `{"models": {id: entry}}`);
  2. each `--model_registry`, given as: one model file (`<id>.json`, the id is its stem), a folder
     of them, a JSON list of entries with an `id` key, a JSON object mapping ids to entries
     (optionally under `"models"`), or an http(s) URL serving any of these JSON forms.
"""

import dataclasses
import difflib
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple
import urllib.error
import urllib.request

BUILTIN_PATH = os.path.join(os.path.dirname(__file__), "models.json")
WEIGHT_TYPES = ("pth", "safetensors")
# OpenModelDB architecture id -> the jaxsr architectures (`jaxsr.interop.detect.all_archs()`)
# its weights may be detected as.
ARCHITECTURES = {
    "esrgan": ("rrdbnet",), "compact": ("srvgg",), "swinir": ("swinir",), "span": ("span",),
    "dat": ("dat",), "omnisr": ("omnisr",), "realplksr": ("realplksr",), "plksr": ("plksr",),
    "hat": ("hat",), "rcan": ("rcan",),
}
_TIMEOUT_S = 30


class RegistryError(ValueError):
  """A registry that cannot be read, an unknown id, an entry jaxsr cannot use (one line)."""


@dataclasses.dataclass(frozen=True)
class Resource:
  """One file of an entry (see the module docstring)."""
  type: str
  urls: Tuple[str, ...]
  size: Optional[int] = None
  sha256: Optional[str] = None
  platform: Optional[str] = None

  @property
  def is_weights(self) -> bool:
    """A PyTorch state dict jaxsr reads (`.pth` or `.safetensors`)."""
    return self.type in WEIGHT_TYPES and self.platform in (None, "pytorch")


@dataclasses.dataclass(frozen=True)
class ModelEntry:
  """An OpenModelDB model; `origin` says which registry it came from."""
  id: str
  name: str
  author: str
  license: str
  architecture: str
  scale: int
  resources: Tuple[Resource, ...]
  origin: str

  @property
  def jaxsr_archs(self) -> Tuple[str, ...]:
    """The jaxsr architectures of this entry; () if jaxsr does not run it."""
    return ARCHITECTURES.get(self.architecture.lower(), ())

  def weights(self) -> Resource:
    """The first `pth` / `safetensors` resource; RegistryError if jaxsr cannot run the entry."""
    if not self.jaxsr_archs:
      raise RegistryError(
          f"model {self.id} is a '{self.architecture}' model, an architecture jaxsr does not run "
          f"(it runs: {', '.join(sorted(ARCHITECTURES))})")
    for resource in self.resources:
      if resource.is_weights and resource.urls:
        return resource
    kinds = ", ".join(sorted({f"{r.platform or '?'}/{r.type}" for r in self.resources})) or "none"
    raise RegistryError(f"model {self.id} has no PyTorch .pth / .safetensors file to read "
                        f"(its files: {kinds})")


def _author(value: Any) -> str:
  return ", ".join(value) if isinstance(value, (list, tuple)) else str(value or "unknown")


def _resource(data: Dict[str, Any]) -> Resource:
  size = data.get("size")
  sha256 = data.get("sha256")
  return Resource(type=str(data.get("type", "")).lower(), urls=tuple(data.get("urls") or ()),
                  size=int(size) if isinstance(size, (int, float)) and size > 0 else None,
                  sha256=str(sha256).lower() if sha256 else None,
                  platform=str(data["platform"]).lower() if data.get("platform") else None)


def parse_entry(model_id: str, data: Dict[str, Any], origin: str) -> ModelEntry:
  """One entry from its JSON object; RegistryError naming the id if it is malformed."""
  try:
    scale = int(data["scale"])
    return ModelEntry(
        id=model_id, name=str(data.get("name", model_id)), author=_author(data.get("author")),
        license=str(data.get("license") or "unknown"),
        architecture=str(data["architecture"]), scale=scale,
        resources=tuple(_resource(r) for r in data.get("resources") or ()), origin=origin)
  except (KeyError, TypeError, ValueError) as e:
    raise RegistryError(f"{origin}: entry {model_id!r} is not an OpenModelDB model "
                        f"({type(e).__name__}: {e})") from None


def parse_registry(data: Any, origin: str, file_id: str = "") -> Dict[str, ModelEntry]:
  """Entries of one JSON document in any form of the module docstring, by id."""
  if isinstance(data, dict) and "resources" in data and "architecture" in data:
    model_id = data.get("id") or file_id
    if not model_id:
      raise RegistryError(f"{origin}: a single model entry needs an 'id' or a file named <id>.json")
    return {model_id: parse_entry(model_id, data, origin)}
  if isinstance(data, dict) and isinstance(data.get("models"), (dict, list)):
    return parse_registry(data["models"], origin)
  if isinstance(data, list):
    entries = {}
    for item in data:
      if not isinstance(item, dict) or not item.get("id"):
        raise RegistryError(f"{origin}: every entry of a JSON list needs an 'id'")
      entries[item["id"]] = parse_entry(item["id"], item, origin)
    return entries
  if isinstance(data, dict):
    return {key: parse_entry(key, value, origin) for key, value in data.items()
            if isinstance(value, dict)}
  raise RegistryError(f"{origin}: not an OpenModelDB registry (a model, a list or an id map)")


def _read_json(text: str, origin: str) -> Any:
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise RegistryError(f"{origin}: not valid JSON ({e})") from None


def read_registry(spec: str) -> Dict[str, ModelEntry]:
  """The entries of one `--model_registry` value (file, folder or URL; module docstring)."""
  if spec.startswith(("http://", "https://")):
    try:
      with urllib.request.urlopen(spec, timeout=_TIMEOUT_S) as response:
        text = response.read().decode("utf-8")
    except urllib.error.HTTPError as e:
      raise RegistryError(f"--model_registry={spec}: cannot fetch it (HTTP {e.code} "
                          f"{e.reason})") from None
    except (urllib.error.URLError, OSError) as e:
      reason = getattr(e, "reason", e)
      raise RegistryError(f"--model_registry={spec}: cannot fetch it ({reason})") from None
    return parse_registry(_read_json(text, spec), spec)
  path = os.path.expanduser(spec)
  if os.path.isdir(path):
    entries = {}
    for name in sorted(os.listdir(path)):
      if name.endswith(".json"):
        entries.update(read_registry(os.path.join(path, name)))
    return entries
  if not os.path.isfile(path):
    raise RegistryError(f"--model_registry={spec}: no such file or folder")
  with open(path, encoding="utf-8") as f:
    text = f.read()
  stem = os.path.splitext(os.path.basename(path))[0]
  return parse_registry(_read_json(text, path), path, file_id=stem)


class Registry:
  """The built-in entries, then those of each extra source (module docstring)."""

  def __init__(self, extra: Sequence[str] = (), builtin: str = BUILTIN_PATH):
    self.sources: List[Dict[str, ModelEntry]] = [read_registry(builtin)] if builtin else []
    self.sources += [read_registry(spec) for spec in extra if spec]

  def entries(self) -> List[ModelEntry]:
    """Every entry an id resolves to, in resolution order (first source first)."""
    seen, found = set(), []
    for source in self.sources:
      for model_id, entry in source.items():
        if model_id not in seen:
          seen.add(model_id)
          found.append(entry)
    return found

  def lookup(self, model_id: str) -> ModelEntry:
    """The entry of `model_id` (exact, else the one case-insensitive match); RegistryError
    with the closest ids otherwise."""
    for source in self.sources:
      if model_id in source:
        return source[model_id]
    ids = [entry.id for entry in self.entries()]
    folded = [i for i in ids if i.lower() == model_id.lower()]
    if len(folded) == 1:
      return self.lookup(folded[0])
    close = difflib.get_close_matches(model_id, ids, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise RegistryError(f"unknown model {model_id!r}{hint} (python -m jaxsr.upscale "
                        "--list_models lists them; --model_registry=<file, folder or URL> adds "
                        "OpenModelDB entries)")


def split_specs(value: str) -> List[str]:
  """A comma-separated `--model_registry` / `config.model_registry` value as a list."""
  return [s.strip() for s in (value or "").split(",") if s.strip()]
