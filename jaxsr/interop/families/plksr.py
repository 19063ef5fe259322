"""PLKSR and RealPLKSR (spandrel 0.4.2 `architectures/PLKSR`): two models, one family.

`detect` returns {'arch': 'plksr' | 'realplksr', 'scale': ..., model kwargs}; the key 'arch'
names the `jaxsr.models.MODELS` entry, the rest are that model's kwargs. Read off the shapes as
spandrel does: `feats.0.weight` [dim, 3, 3, 3]; the last `feats` conv [3 * scale^2, dim, 3, 3];
PLKSR's blocks spell `channe_mixer`, RealPLKSR's `channel_mixer`; `lk.conv` (PLK),
`lk.convs.<i>` (SparsePLK) or `lk.mn_conv` (RectSparsePLK) [pdim, pdim, k, k], split_ratio =
pdim / dim; `attn.f.0` = use_ea; RealPLKSR `layer_norm.*` = layer_norm, `to_img.init_pos` =
DySample. Not visible: PLKSR `with_idt` (False assumed), RealPLKSR `norm_groups` (4) and
`dropout` (training only), SparsePLK's dilations ((1, 2, 3, 4) assumed, as spandrel does).
"""

import numpy as np

ARCHS = ("plksr", "realplksr")

_SPARSE_DILATIONS = (1, 2, 3, 4)  # spandrel's default; not visible in the weights.


def _seq_len(state_dict: dict, prefix: str) -> int:
  """1 + the largest i of the keys `<prefix>.<i>.*` (0 if none)."""
  indices = [int(k[len(prefix) + 1:].split(".", 1)[0]) for k in state_dict
             if k.startswith(prefix + ".") and k[len(prefix) + 1:].split(".", 1)[0].isdigit()]
  return max(indices, default=-1) + 1


def _sparse_kernels(state_dict: dict, count: int) -> dict:
  """SparsePLK's kwargs from its `count` convs (the last one, if there are more than the
  assumed dilations, is the max kernel)."""
  sizes = [int(np.shape(state_dict[f"feats.1.lk.convs.{i}.weight"])[2]) for i in range(count)]
  use_max = count == len(_SPARSE_DILATIONS) + 1
  if count != len(_SPARSE_DILATIONS) and not use_max:
    raise ValueError(f"SparsePLK with {count} large-kernel convs: its dilations cannot be read "
                     f"from the weights (only {len(_SPARSE_DILATIONS)} dilated convs, plus "
                     "an optional max kernel, are supported)")
  kernels = sizes[:len(_SPARSE_DILATIONS)]
  dilated = [(k - 1) * d + 1 for k, d in zip(kernels, _SPARSE_DILATIONS)]
  # kernel_size only sizes the max kernel, max(kernel_size, dilated extents).
  kernel_size = sizes[-1] if use_max else max(dilated)
  return dict(kernel_size=kernel_size, sparse_kernels=tuple(kernels),
              sparse_dilations=_SPARSE_DILATIONS, use_max_kernel=use_max)


def detect(state_dict: dict[str, np.ndarray]) -> dict | None:
  """{'arch': 'plksr' | 'realplksr', 'scale': s, ...kwargs} when `state_dict` is a PLKSR or
  RealPLKSR (any layout above), else None.

  Raises:
    ValueError: a SparsePLK whose dilations cannot be inferred.
  """
  sd = state_dict
  plksr = "feats.1.channe_mixer.0.weight" in sd
  real = "feats.1.channel_mixer.0.weight" in sd
  lk_keys = ("feats.1.lk.conv.weight", "feats.1.lk.convs.0.weight", "feats.1.lk.mn_conv.weight")
  if not ("feats.0.weight" in sd and "feats.1.refine.weight" in sd and (plksr or real)
          and any(k in sd for k in lk_keys)):
    return None
  first = np.shape(sd["feats.0.weight"])
  if len(first) != 4 or first[1] != 3:
    return None
  dim = int(first[0])
  total = _seq_len(sd, "feats")
  last = np.shape(sd.get(f"feats.{total - 1}.weight", ()))
  if len(last) != 4 or last[0] % 3 or last[1] != dim:
    return None
  scale = int(round((last[0] // 3)**0.5))
  if 3 * scale**2 != last[0]:
    return None
  lk_key = next(k for k in lk_keys if k in sd)
  pdim = int(np.shape(sd[lk_key])[0])
  hparams = dict(scale=scale, dim=dim, n_blocks=total - (3 if real else 2),
                 kernel_size=int(np.shape(sd[lk_key])[2]), split_ratio=pdim / dim,
                 use_ea="feats.1.attn.f.0.weight" in sd)
  if real:
    return dict(arch="realplksr", **hparams, dysample="to_img.init_pos" in sd,
                layer_norm="feats.1.layer_norm.weight" in sd)
  mixer = (int(np.shape(sd["feats.1.channe_mixer.0.weight"])[2]),
           int(np.shape(sd["feats.1.channe_mixer.2.weight"])[2]))
  ccm_type = {(3, 1): "CCM", (1, 3): "ICCM", (3, 3): "DCCM"}.get(mixer)
  if ccm_type is None:
    return None
  lk_type = {"feats.1.lk.conv.weight": "PLK", "feats.1.lk.convs.0.weight": "SparsePLK",
             "feats.1.lk.mn_conv.weight": "RectSparsePLK"}[lk_key]
  hparams = dict(arch="plksr", **hparams, ccm_type=ccm_type, lk_type=lk_type)
  if lk_type == "SparsePLK":
    hparams.update(_sparse_kernels(sd, _seq_len(sd, "feats.1.lk.convs")))
  return hparams


def dysample_init_pos(scale: int, groups: int) -> np.ndarray:
  """DySample's `init_pos` buffer values, `[2 * groups * scale^2]` (see
  `jaxsr.models.plksr.dysample_init_pos`, which computes them in the model)."""
  h = (np.arange(scale, dtype=np.float32) - (scale - 1) / 2) / scale
  grid = np.stack([np.broadcast_to(h[None, :], (scale, scale)),
                   np.broadcast_to(h[:, None], (scale, scale))])
  return np.broadcast_to(grid[:, None], (2, groups, scale, scale)).reshape(-1)


def to_jaxsr(state_dict: dict[str, np.ndarray], hparams: dict) -> dict[str, np.ndarray]:
  """The state dict without DySample's `to_img.init_pos` buffer (checked against the value
  the model recomputes); spandrel's other names map as they are.

  Raises:
    ValueError: `init_pos` is not DySample's for the scale.
  """
  out = dict(state_dict)
  init_pos = out.pop("to_img.init_pos", None)
  if init_pos is not None:
    scale = int(hparams["scale"])
    expected = dysample_init_pos(scale, 3 if scale % 2 else 4)
    if (np.size(init_pos) != expected.size
        or not np.allclose(np.ravel(np.asarray(init_pos, np.float32)), expected, atol=1e-6)):
      raise ValueError(f"to_img.init_pos is not DySample's for scale {scale} (shape "
                       f"{np.shape(init_pos)})")
  return out
