"""Data specs, parsed without TensorFlow (config validation must not import it).

  folder:<dir>              HR images of a folder (recursive).
  paired:<lr_dir>:<hr_dir>  LR/HR pairs.
  tfds:<name>[:<split>]     a prepared tensorflow-datasets dataset.

Whether the folder or dataset exists is checked where the pipeline opens it
(`jaxsr.data.sources.load_source`), before anything compiles.
"""

from typing import List, Tuple

SPEC_KINDS = ("folder", "paired", "tfds")
SPEC_FORMS = "folder:<dir>, paired:<lr_dir>:<hr_dir> or tfds:<name>[:<split>]"


def parse_spec(spec: str) -> Tuple[str, List[str]]:
  """`kind:arg[:arg]` -> (kind, args); raises ValueError for unknown or malformed specs."""
  kind, sep, rest = spec.partition(":")
  if sep and kind == "folder" and rest:
    return kind, [rest]
  if sep and kind == "paired":
    lr_dir, _, hr_dir = rest.partition(":")
    if lr_dir and hr_dir:
      return kind, [lr_dir, hr_dir]
  if sep and kind == "tfds" and rest:
    name, _, split = rest.partition(":")
    return kind, [name, split]
  raise ValueError(f"Bad data spec '{spec}': expected {SPEC_FORMS}.")
