"""OmniSR (official Omni-SR / spandrel `OmniSR` state dicts) -> `jaxsr.models.omnisr.OmniSR`.

Detection reads the shapes as spandrel 0.4.2 does: num_feat and num_in_ch from `input.weight`,
bias from `input.bias`, scale and num_out_ch from `up.0.weight` (out = num_out_ch * scale^2,
num_out_ch tried as num_in_ch, 3, 4, 1), res_num and block_num from the `residual_layer`
indices, pe and window_size from `rel_pos_bias.weight` ((2 window - 1)^2 rows). Without
position bias the window cannot be read off: 8 (the released models', spandrel's default).
"""

import math
import re

import numpy as np

ARCH = "omnisr"

_DISTINCTIVE = ("residual_layer.0.residual_layer.0.layer.0.fn.0.weight", "input.weight",
                "up.0.weight")
_REL_POS_BIAS = "residual_layer.0.residual_layer.0.layer.2.fn.rel_pos_bias.weight"
_DEFAULT_WINDOW = 8
_JUNK_SUFFIXES = ("total_ops", "total_params")  # thop's profiling buffers, in some checkpoints.


def _seq_len(state_dict: dict, prefix: str) -> int:
  """1 + the largest i with a key `prefix.i.<...>` (spandrel's get_seq_len); 0 if none."""
  pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
  indices = [int(m.group(1)) for k in state_dict if (m := pattern.match(k))]
  return max(indices) + 1 if indices else 0


def _scale_and_out_channels(out: int, in_ch: int) -> tuple[int, int] | None:
  """(scale, out_ch) with scale^2 * out_ch = out, out_ch tried as in_ch, 3, 4, 1."""
  for c in (in_ch, 3, 4, 1):
    if c > 0 and out >= c and out % c == 0 and math.isqrt(out // c)**2 == out // c:
      return math.isqrt(out // c), c
  return None


def detect(state_dict: dict[str, np.ndarray]) -> dict | None:
  """OmniSR's hparams (model kwargs with 'scale') if `state_dict` is an OmniSR's, else None."""
  if not all(k in state_dict for k in _DISTINCTIVE):
    return None
  first, up = np.shape(state_dict["input.weight"]), np.shape(state_dict["up.0.weight"])
  if len(first) != 4 or len(up) != 4:
    return None
  num_feat, num_in_ch = int(first[0]), int(first[1])
  found = _scale_and_out_channels(int(up[0]), num_in_ch)
  if found is None:
    return None
  scale, num_out_ch = found
  state_dict = {k: v for k, v in state_dict.items() if not k.endswith(_JUNK_SUFFIXES)}
  res_num = _seq_len(state_dict, "residual_layer")
  block_num = _seq_len(state_dict, "residual_layer.0.residual_layer") - 1
  pe = _REL_POS_BIAS in state_dict
  window_size = _DEFAULT_WINDOW
  if pe:
    rows = int(np.shape(state_dict[_REL_POS_BIAS])[0])
    window_size = int((math.sqrt(rows) + 1) / 2)
  return {"scale": scale, "num_in_ch": num_in_ch, "num_out_ch": num_out_ch,
          "num_feat": num_feat, "block_num": block_num, "pe": pe,
          "window_size": window_size, "res_num": res_num, "bias": "input.bias" in state_dict}


def rel_pos_indices(window: int) -> np.ndarray:
  """`[T, T]` index into the `[(2 window - 1)^2, heads]` bias table (torch's
  `rel_pos_indices` buffer; T = window^2)."""
  coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij"))
  rel = coords.reshape(2, -1)[:, :, None] - coords.reshape(2, -1)[:, None, :] + window - 1
  return rel[0] * (2 * window - 1) + rel[1]


def to_jaxsr(state_dict: dict[str, np.ndarray], hparams: dict) -> dict[str, np.ndarray]:
  """Renames `<...>.rel_pos_bias.weight` to `<...>.rel_pos_bias.embedding` (the nn.Embed's
  table, kept as is), drops thop's `total_ops` / `total_params` and the `rel_pos_indices`
  buffer (checked against the window: ValueError if it differs)."""
  expected_index = rel_pos_indices(hparams.get("window_size", _DEFAULT_WINDOW))
  out = {}
  for key, value in state_dict.items():
    if key.endswith(_JUNK_SUFFIXES):
      continue
    if key.endswith(".rel_pos_indices"):
      if not np.array_equal(np.asarray(value), expected_index):
        raise ValueError(f"{key} is not OmniSR's relative position index for window "
                         f"{hparams.get('window_size', _DEFAULT_WINDOW)}")
      continue
    if key.endswith(".rel_pos_bias.weight"):
      key = key[:-len("weight")] + "embedding"
    out[key] = value
  return out
