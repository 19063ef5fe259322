"""Flags shared by the programs that take `--model=<OpenModelDB id>` (`jaxsr.upscale`,
`jaxsr.export`): where more registry entries come from and a local copy of the weights."""

from typing import Optional

from absl import flags

from jaxsr.hub import cache
from jaxsr.hub import registry

MODEL_REGISTRY = flags.DEFINE_string(
    "model_registry", "", "More models for --model=<id>: OpenModelDB JSON (a <id>.json file, a "
    "folder of them, a JSON list or id map, or an http(s) URL); comma-separated.")
WEIGHTS = flags.DEFINE_string(
    "weights", "", "With --model=<id>: a local copy of the model's .pth / .safetensors, used "
    "instead of downloading (checked against the registry's sha256).")
LIST_MODELS = flags.DEFINE_bool(
    "list_models", False, "Print the models --model=<id> knows (id, architecture, scale, "
    "licence, cached) and exit.")


def workdir_of(model_id: str) -> str:
  """The cached workdir of `model_id` (`cache.model_workdir` with these flags)."""
  return cache.model_workdir(model_id, registry.split_specs(MODEL_REGISTRY.value),
                             WEIGHTS.value)


def print_models() -> None:
  """`--list_models`: the registries' entries as a table on stdout, and the cache's place."""
  print(cache.format_listing(cache.list_models(registry.split_specs(MODEL_REGISTRY.value))))
  print(f"(cache: {cache.cache_root()}/models; ${cache.ENV} moves it)")


def check_unused(model_id: Optional[str]) -> None:
  """ValueError when --weights is given without a --model id to apply it to."""
  if WEIGHTS.value and not model_id:
    raise ValueError("--weights applies to --model=<id> (an OpenModelDB id); for other "
                     "files convert them: python -m jaxsr.convert --input=<file> --workdir=<dir>")
