"""Fuzz of `config_base.validate`: a config with random (mostly invalid) values in one or two
fields is either accepted or rejected by a ValueError naming a changed field, never by another
exception; an accepted config builds its models and optimizers (`components_from_config`, the
step before anything compiles) with no error other than a ValueError. Nothing is compiled."""

import glob
import math
import os

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import ml_collections

from jaxsr import builders
from jaxsr import config_base
from jaxsr import models
from tests import utils

TEMPLATES = {
    "base": config_base.base_config(),
    "gan": config_base.gan_config(),
    "realworld": config_base.realworld_config(),
    "realworld_gan": config_base.realworld_config(gan=True),
    **{os.path.basename(path)[:-3]: config_base.config_from_file(path)
       for path in sorted(glob.glob(os.path.join(utils.REPO, "configs", "*.py")))},
    "tiny": utils.tiny_config("/data/train"),
    "tiny_gan": utils.tiny_gan_config("/data/train"),
    "tiny_realworld_gan": utils.tiny_realworld_config("/data/train", gan=True),
}
NAMES = sorted(models.MODELS) + sorted(models.DISCRIMINATORS) + [
    "", "x", "l1", "l2", "fro", "charbonnier", "hinge", "ragan", "cosine", "constant", "alex",
    "float32", "bfloat16", "float16", "best", "latest", "12", "-3", "iso", "area", "realesrgan",
    "folder:", "folder:/nonexistent", "paired:a", "paired:a:b", "tfds:", "tfds:set5", "bogus:x",
    "conv5_4:1.0", "relu5_4", "conv9_9:1", "conv5_4:x", ",", "basicsr:/nonexistent.pth"]
ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3),
    st.sampled_from([7, 8, 16, 21, 96, 128, 400, 2**32, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(NAMES),
    st.lists(st.one_of(st.integers(-2, 30), st.floats(-1.0, 2.0), st.sampled_from(["iso", "x"])),
             max_size=7).map(tuple))


def _leaves(config, prefix=""):
  """{dotted key: value} of the fields validate checks (model options are the registry's)."""
  out = {}
  for key, value in config.items():
    name = prefix + key
    if isinstance(value, ml_collections.ConfigDict):
      out.update(_leaves(value, name + "."))
    elif not name.startswith(("model.", "discriminator.")) or key == "name":
      out[name] = value
  return out


def _near(value):
  """Values of `value`'s kind around it: off by a sign, a factor, an element."""
  if isinstance(value, bool):
    return st.booleans()
  if isinstance(value, int):
    return st.integers(-abs(value) - 2, 2 * abs(value) + 2)
  if isinstance(value, float):
    bound = 2 * abs(value) + 1
    return st.floats(-bound, bound)
  if isinstance(value, tuple) and value:
    return st.lists(st.one_of(*(_near(v) for v in set(value))), max_size=len(value) + 1).map(
        tuple)
  return st.just(value)


@st.composite
def mutated_configs(draw):
  """(config, changed keys): a template with one or two fields set to random values."""
  template = TEMPLATES[draw(st.sampled_from(sorted(TEMPLATES)))]
  leaves = _leaves(template)
  keys = draw(st.lists(st.sampled_from(sorted(leaves)), min_size=1, max_size=2, unique=True))
  tree = template.to_dict()
  for key in keys:
    node = tree
    *parents, leaf = key.split(".")
    for parent in parents:
      node = node[parent]
    node[leaf] = draw(st.one_of(ANY_VALUE, _near(leaves[key])))
  # Built anew, as a config file may: no type-safety from the template's fields.
  return ml_collections.ConfigDict(tree), keys


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs(), st.sampled_from([None, 1, 2, 4]))
def test_validate_accepts_or_names_the_field(case, device_count):
  config, keys = case
  try:
    config_base.validate(config, device_count)
  except ValueError as e:
    assert any(key in str(e) for key in keys), (keys, str(e))
    return
  try:
    builders.components_from_config(config)
  except ValueError:  # E.g. a scale the model does not support: the registry names it.
    pass


def test_configs_are_valid():
  for name, config in TEMPLATES.items():
    config_base.validate(config, 4)
    assert all(not isinstance(v, float) or math.isfinite(v)
               for v in _leaves(config).values()), name
