"""LPIPS: AlexNet / VGG16 backbones, weight lookup and loading, distances vs the `lpips` package.

The golden distances come from the real `lpips` package (tests/data/make_lpips_golden.py) with
the package's v0.1 linear heads and random torchvision backbones, rebuilt here from the same
seed by that script's `random_backbone_state` (importing it does not import torch).
"""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import lpips
from jaxsr.interop import torch_io
from jaxsr.models import layers as layers_lib
from jaxsr.models import vgg
from tests import utils
from tests.conftest import DATA_DIR

NETS = ("alex", "vgg")
CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}


def _golden_script():
  spec = importlib.util.spec_from_file_location("make_lpips_golden",
                                                DATA_DIR / "make_lpips_golden.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
  """{net: (lin file, backbone file, backbone state dict)}: the golden fixture's weights."""
  script = _golden_script()
  folder = tmp_path_factory.mktemp("lpips_weights")
  out = {}
  for net in NETS:
    state = script.random_backbone_state(net)
    torch_io.save_state_dict(str(folder / f"{net}.pth"), state)
    out[net] = (str(DATA_DIR / f"lpips_v0.1_{net}.pth"), str(folder / f"{net}.pth"), state)
  return out


@pytest.fixture(scope="module")
def lpips_params(weights):
  return {net: lpips.load_lpips_params(net, *weights[net][:2]) for net in NETS}


@pytest.fixture(scope="module")
def lpips_fns(lpips_params):
  return {net: lpips.make_lpips_fn(net, lpips_params[net]) for net in NETS}


def test_backbone_shapes_and_parameter_counts():
  # Parameter counts of torchvision's alexnet().features and vgg16().features.
  counts = {"alexnet": 2_469_696, "vgg16": 14_714_688}
  taps = {"alexnet": ("relu1", "relu2", "relu3", "relu4", "relu5"),
          "vgg16": ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")}
  # 48x80 input. AlexNet: conv1 (11x11 /4, pad 2) -> 11x19; pool (3x3 /2) -> 5x9; pool -> 2x4.
  sizes = {"alexnet": ((11, 19), (5, 9), (2, 4), (2, 4), (2, 4)),
           "vgg16": ((48, 80), (24, 40), (12, 20), (6, 10), (3, 5))}
  x = jnp.zeros((2, 48, 80, 3))
  for arch, net in (("alexnet", "alex"), ("vgg16", "vgg")):
    model = vgg.TorchvisionFeatures(taps[arch], arch)
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    assert layers_lib.count_params(variables["params"]) == counts[arch]
    out = jax.eval_shape(model.apply, variables, x)
    assert list(out) == list(taps[arch])
    for tap, (h, w), c in zip(taps[arch], sizes[arch], CHANNELS[net]):
      assert out[tap].shape == (2, h, w, c), (arch, tap)
  assert vgg.VGG16_LAYERS[-4:] == ("relu5_2", "conv5_3", "relu5_3", "pool5")
  assert len(vgg.VGG16_LAYERS) == 31 and len(vgg.ALEXNET_LAYERS) == 13  # torchvision lengths.


@pytest.mark.exact("the weights are copied from the .pth files")
@pytest.mark.parametrize("net", NETS)
def test_load_params(weights, net):
  lin_path, backbone_path, state = weights[net]
  params = lpips.load_lpips_params(net, lin_path, backbone_path)
  spec = vgg.ARCHS[{"alex": "alexnet", "vgg": "vgg16"}[net]]
  assert sorted(params["backbone"]) == sorted(c[0] for c in spec.convs)
  first = params["backbone"]["conv1" if net == "alex" else "conv1_1"]
  np.testing.assert_array_equal(first["kernel"],
                                state["features.0.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(first["bias"], state["features.0.bias"])
  last_index, last = ("10", "conv5") if net == "alex" else ("28", "conv5_3")
  np.testing.assert_array_equal(params["backbone"][last]["kernel"],
                                state[f"features.{last_index}.weight"].transpose(2, 3, 1, 0))
  # The package's real linear heads: [1, C, 1, 1] non-negative weights.
  real = torch_io.load_state_dict(lin_path)
  assert [params["lin"][f"lin{k}"].shape for k in range(5)] == [(c,) for c in CHANNELS[net]]
  for k in range(5):
    np.testing.assert_array_equal(params["lin"][f"lin{k}"],
                                  real[f"lin{k}.model.1.weight"].reshape(-1))
    assert params["lin"][f"lin{k}"].min() >= 0 and params["lin"][f"lin{k}"].max() > 0


@pytest.mark.numerics
@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("shape", ["64x64", "48x80"])
def test_matches_the_lpips_package(lpips_params, lpips_fns, net, shape):
  golden = np.load(DATA_DIR / "lpips_golden.npz")
  x, y = (golden[f"{shape}/{k}"].astype(np.float32) / 255.0 for k in ("x", "y"))
  expected = golden[f"{net}/{shape}"]
  d = np.asarray(lpips_fns[net](jnp.asarray(x), jnp.asarray(y)))
  assert d.shape == expected.shape and d.dtype == np.float32
  # PyTorch's float32 distances, within rounding of the backbone; relative (sums of squares).
  utils.assert_close(d, expected, ops=utils.network_ops(lpips_params[net]), magnitude=0)
  if shape == "64x64":  # Pair 0 is an image and itself: exactly 0 (lpips.py makes sure).
    assert d[0] == 0.0 and np.all(d[1:] > 0)


@pytest.mark.numerics
def test_identical_images_and_growing_noise(lpips_params, lpips_fns):
  rng = np.random.default_rng(3)
  x = rng.uniform(size=(1, 48, 48, 3)).astype(np.float32)
  noise = rng.standard_normal(x.shape).astype(np.float32)
  sigmas = (0.01, 0.03, 0.1, 0.3)
  noisy = np.concatenate([np.clip(x + s * noise, 0, 1) for s in sigmas])
  clean = np.repeat(x, len(sigmas), axis=0)
  for net in NETS:
    fn = lpips_fns[net]
    np.testing.assert_array_equal(fn(clean, clean), np.zeros(len(sigmas)))  # Exact, by design.
    d = np.asarray(fn(clean, noisy))
    assert np.all(np.diff(d) > 0) and d[0] > 0, (net, d)
    # Symmetric; swapped, each image sits at another batch position, which XLA:CPU may round
    # differently: a relative difference of the features' rounding (the convolutions').
    utils.assert_close(fn(noisy, clean), d, ops=utils.network_ops(lpips_params[net]),
                       magnitude=0)


def test_gradient(lpips_fns):
  rng = np.random.default_rng(4)
  x, y = (jnp.asarray(rng.uniform(size=(2, 32, 32, 3)), jnp.float32) for _ in range(2))
  g = jax.grad(lambda x: lpips_fns["alex"](x, y).sum())(x)
  assert g.shape == x.shape and bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).sum()) > 0


def test_input_checks(lpips_fns):
  fn = lpips_fns["alex"]
  assert fn(np.zeros((1, 31, 40, 3)), np.ones((1, 31, 40, 3))).shape == (1,)
  with pytest.raises(ValueError, match="H, W >= 31"):
    fn(np.zeros((1, 30, 40, 3)), np.zeros((1, 30, 40, 3)))
  with pytest.raises(ValueError, match="different shapes"):
    fn(np.zeros((1, 32, 32, 3)), np.zeros((2, 32, 32, 3)))
  with pytest.raises(ValueError, match="RGB"):
    fn(np.zeros((1, 32, 32, 1)), np.zeros((1, 32, 32, 1)))
  with pytest.raises(ValueError, match="'squeeze'"):
    lpips.make_lpips_fn("squeeze", {})


def test_bad_weight_files(weights, tmp_path):
  lin_path, backbone_path, state = weights["alex"]
  with pytest.raises(ValueError, match=r"lin1.model.1.weight is \(1, 128, 1, 1\), expected "
                                       r"\(1, 192, 1, 1\)"):  # VGG heads for AlexNet.
    lpips.load_lpips_params("alex", weights["vgg"][0], backbone_path)
  partial = {k: v for k, v in state.items() if not k.startswith("features.6.")}
  torch_io.save_state_dict(str(tmp_path / "partial.pth"), partial)
  with pytest.raises(ValueError, match=r"AlexNet weights file .* lacks conv layers \['conv3'\]"):
    lpips.load_lpips_params("alex", lin_path, str(tmp_path / "partial.pth"))
  lin = {f"lin{k}.model.1.weight": np.ones((1, c, 1, 1), np.float32)
         for k, c in enumerate(CHANNELS["alex"][:4])}
  torch_io.save_state_dict(str(tmp_path / "lin4_missing.pth"), lin)
  with pytest.raises(ValueError, match="lin4.model.1.weight is missing"):
    lpips.load_lpips_params("alex", str(tmp_path / "lin4_missing.pth"), backbone_path)


def test_resolve_weights(tmp_path, monkeypatch):
  # A fake installed `lpips` package and torch hub cache.
  package = tmp_path / "site" / "lpips"
  (package / "weights" / "v0.1").mkdir(parents=True)
  (package / "__init__.py").write_text("raise ImportError('must not be imported')\n")
  (package / "weights" / "v0.1" / "vgg.pth").write_bytes(b"x")
  checkpoints = tmp_path / "torch_home" / "hub" / "checkpoints"
  checkpoints.mkdir(parents=True)
  (checkpoints / "vgg16-397923af.pth").write_bytes(b"x")
  monkeypatch.syspath_prepend(str(tmp_path / "site"))
  importlib.invalidate_caches()
  monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
  assert lpips.resolve_lpips_weights("vgg") == (
      str(package / "weights" / "v0.1" / "vgg.pth"), str(checkpoints / "vgg16-397923af.pth"))
  given = tmp_path / "mine.pth"
  given.write_bytes(b"x")
  assert lpips.resolve_lpips_weights("vgg", str(given), str(given)) == (str(given), str(given))

  monkeypatch.delenv("TORCH_HOME")
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  assert lpips.torch_hub_checkpoints() == str(tmp_path / "cache" / "torch" / "hub" /
                                               "checkpoints")
  with pytest.raises(ValueError) as info:  # Package has no alex.pth; no cached backbone.
    lpips.resolve_lpips_weights("alex")
  message = str(info.value)
  for part in ("eval.lpips_weights", "eval.lpips_backbone", "alexnet-owt-7be5be79.pth",
               "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
               "weights/v0.1/alex.pth",
               "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/"
               "v0.1/alex.pth", str(tmp_path / "cache" / "torch" / "hub" / "checkpoints")):
    assert part in message, part
  with pytest.raises(ValueError, match="eval.lpips_weights") as info:
    lpips.resolve_lpips_weights("vgg", str(tmp_path / "missing.pth"), str(given))
  assert "missing.pth" in str(info.value) and "lpips_backbone" not in str(info.value)
  with pytest.raises(ValueError, match="'squeeze'"):
    lpips.resolve_lpips_weights("squeeze")


@pytest.mark.numerics
def test_eval_mode_reports_lpips_of_model_and_bicubic(weights, lpips_params, lpips_fns,
                                                      tmp_path):
  from jaxsr import config_base, evaluate  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  folder = utils.make_image_folder(tmp_path / "Set5" / "HR", count=2, size=(64, 48), seed=6)
  config = config_base.base_config()
  config.model.name, config.scale = "bicubic", 2
  config.eval.datasets = "folder:" + folder
  config.eval.noref = False
  config.eval.lpips = "alex"
  config.eval.lpips_weights, config.eval.lpips_backbone = weights["alex"][:2]
  workdir = tmp_path / "run"
  summary = evaluate.evaluate(config, str(workdir))["Set5"]
  for image in summary["images"]:
    sr = np.asarray(Image.open(workdir / "eval" / "Set5_x2" / f"{image['name']}.png"))
    hr = np.asarray(Image.open(f"{folder}/{image['name']}.png"))[:64, :48]
    expected = lpips_fns["alex"](sr[None] / 255.0, hr[None] / 255.0)[0]
    # Another program (eval's) on the same 8-bit images: within the backbone's rounding.
    assert image["lpips"] == utils.approx(
        float(expected), ops=utils.network_ops(lpips_params["alex"]), magnitude=0)
    assert image["lpips"] > 0
    # The model is bicubic on the same LR: same LPIPS as the bicubic row (up to
    # float32 vs float64 rounding of a few pixels).
    assert image["bicubic"]["lpips"] == pytest.approx(image["lpips"], rel=1e-3)
  report = (workdir / "eval" / "report.md").read_text()
  assert "LPIPS" in report and "edge width" not in report
