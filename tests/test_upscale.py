"""Tiled inference (`jaxsr.inference`), image files (`jaxsr.image_io`) and the upscale CLI."""

import itertools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxsr import builders
from jaxsr import checkpointing
from jaxsr import config_base
from jaxsr import image_io
from jaxsr import inference
from jaxsr import models
from jaxsr import sharding
from jaxsr import upscale
from jaxsr.ops import imresize

from tests import utils

# MSRResNet (1 block) x2: conv_first, body conv1, conv2, upconv1 at LR (4 px); conv_hr and
# conv_last at HR (2 HR px round up to 1 LR px); the bilinear skip needs 1 LR px: radius 5.
MSRRESNET_RADIUS = 5
BICUBIC_RADIUS = 2  # MATLAB bicubic x2 reads 4 taps: LR pixels floor(u) - 1 .. floor(u) + 2.
PNG_COLOUR_TYPE = {"L": 0, "RGB": 2, "LA": 4, "RGBA": 6}  # The PNG specification's values.
# Tiles are other shapes, so other compiled programs than the whole image: equal up to rounding
# (`utils.assert_close`) of the model's accumulations, here strong_sr_fn's MSRResNet (3x3 taps:
# conv_first over 3 channels, five convs over 8) and bicubic x2 (two passes of 4 + 2 taps).
STRONG_OPS = 27 + 5 * 72
BICUBIC_OPS = 12


def _tf():
  import jaxsr.data  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def png_header(path):
  """(bit depth, colour type) read from the IHDR bytes of a PNG file."""
  with open(path, "rb") as f:
    data = f.read(26)
  assert data[12:16] == b"IHDR"
  return data[24], data[25]


def write_png(path, pixels):
  """Reference PNG writer (PIL for 8 bits, TF for 16 bits): uint `[H, W, C]`."""
  if pixels.dtype == np.uint16:
    with open(path, "wb") as f:
      f.write(_tf().io.encode_png(pixels).numpy())
  else:
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[pixels.shape[2]]
    Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode=mode).save(path)


def read_png(path):
  """Reference PNG reader: uint8 or uint16 `[H, W, C]` as stored."""
  with open(path, "rb") as f:
    data = f.read()
  tf = _tf()
  dtype = tf.uint16 if png_header(path)[0] == 16 else tf.uint8
  return tf.io.decode_png(data, dtype=dtype).numpy()


@pytest.fixture(scope="module")
def strong_sr_fn():
  """A random 8-feature MSRResNet x2 with weights x4: output strongly depends on neighbours."""
  model = models.create_model("msrresnet", 2, num_feat=8, num_block=1)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
  return inference.make_upscaler(model, jax.tree.map(lambda x: 4 * x, variables))


@pytest.fixture(scope="module")
def bicubic_sr_fn():
  return inference.make_upscaler(models.create_model("bicubic", 2), {})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  """A tiny MSRResNet x2 run: config.json and a checkpoint at step 7 whose EMA params are 3x
  its params."""
  workdir = tmp_path_factory.mktemp("run")
  config = utils.tiny_config(str(workdir))
  config.model.num_feat = 8
  comps = builders.components_from_config(config)
  state = builders.build_state(config, comps, sharding.create_mesh())
  state = state.replace(ema_params=jax.tree.map(lambda p: 3 * p, state.params))
  checkpointing.save(checkpointing.create_manager(str(workdir)), 7, state, {"next_step": 7})
  (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
  return workdir, jax.device_get(state.params)


def _image(rng, height, width, channels=3):
  return rng.random((height, width, channels)).astype(np.float32)


# --- Tiling.

def test_tile_spans_partition_and_keep_pad_from_inner_edges():
  for size, pad in itertools.product(range(1, 30), range(0, 7)):
    for tile in range(1, size + 4):
      window, spans = inference.tile_spans(size, tile, pad)
      assert window == min(size, tile + 2 * pad)
      assert [s[0] for s in spans] == list(range(0, size, tile))
      assert spans[-1][1] == size and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
      for start, end, w0 in spans:
        assert 0 <= w0 <= start < end <= w0 + window <= size
        assert w0 == 0 or start - w0 >= pad  # Left edge inside the image: pad of context.
        assert w0 + window == size or w0 + window - end >= pad


def test_receptive_radius_of_the_tiny_model(strong_sr_fn):
  rng = np.random.default_rng(0)
  image = _image(rng, 21, 21)
  changed = image.copy()
  changed[10, 10] += 0.2
  diff = np.abs(strong_sr_fn(image) - strong_sr_fn(changed)).max(axis=-1)
  ys, xs = np.nonzero(diff)
  assert max(np.abs(ys // 2 - 10).max(), np.abs(xs // 2 - 10).max()) == MSRRESNET_RADIUS


@pytest.mark.numerics
@pytest.mark.parametrize("height,width,tile", [
    (24, 40, 8),  # Tiles divide the image.
    (23, 37, 10),  # They do not; not square.
    (9, 12, 16),  # Image smaller than a tile.
])
def test_tiled_equals_untiled_when_pad_covers_the_receptive_field(strong_sr_fn, height, width,
                                                                  tile):
  image = _image(np.random.default_rng(height), height, width)
  whole = inference.upscale_image(strong_sr_fn, image, 2)
  calls = []
  tiled = inference.upscale_image(strong_sr_fn, image, 2, tile=tile,
                                  tile_pad=MSRRESNET_RADIUS,
                                  progress=lambda done, total: calls.append((done, total)))
  assert whole.shape == tiled.shape == (2 * height, 2 * width, 3)
  utils.assert_close(tiled, whole, ops=STRONG_OPS, magnitude=1.0)
  count = -(-height // tile) * -(-width // tile)
  assert calls == [(i, count) for i in range(count + 1)]


def test_pad_below_the_receptive_radius_changes_the_output(strong_sr_fn):
  image = _image(np.random.default_rng(1), 24, 40)
  whole = inference.upscale_image(strong_sr_fn, image, 2)
  tiled = inference.upscale_image(strong_sr_fn, image, 2, tile=8, tile_pad=1)
  assert np.abs(tiled - whole).max() > 1e-3


@pytest.mark.numerics
def test_bicubic_tiles_and_multiple_padding(bicubic_sr_fn):
  image = _image(np.random.default_rng(2), 10, 13)
  shapes = []

  def recording_sr_fn(lr):
    shapes.append(lr.shape)
    return bicubic_sr_fn(lr)

  whole = inference.upscale_image(recording_sr_fn, image, 2, multiple=4)
  assert shapes == [(12, 16, 3)]  # Reflect-padded to multiples of 4.
  shapes.clear()
  # tile 5 -> 8 and pad 2 -> 4 (multiples of 4): windows of 12 x 16, 2 x 2 tiles.
  tiled = inference.upscale_image(recording_sr_fn, image, 2, tile=5, tile_pad=BICUBIC_RADIUS,
                                  multiple=4)
  assert shapes == [(12, 16, 3)] * 4
  utils.assert_close(tiled, whole, ops=BICUBIC_OPS, magnitude=1.0)
  # Without the multiple, whole-image bicubic is MATLAB bicubic of the image itself.
  utils.assert_close(inference.upscale_image(bicubic_sr_fn, image, 2, tile=4,
                                             tile_pad=BICUBIC_RADIUS),
                     np.clip(imresize.imresize_np(image, 2), 0, 1), ops=BICUBIC_OPS,
                     magnitude=1.0)


def test_rrdbnet_x2_needs_even_sizes_and_gets_them():
  model = models.create_model("rrdbnet", 2, num_feat=4, num_block=1, num_grow_ch=4)
  assert inference.input_multiple(model) == 2
  assert inference.input_multiple(models.create_model("msrresnet", 2)) == 1
  variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
  out = inference.upscale_image(inference.make_upscaler(model, variables),
                                _image(np.random.default_rng(3), 7, 9), 2, multiple=2)
  assert out.shape == (14, 18, 3) and 0 <= out.min() and out.max() <= 1


@pytest.mark.numerics
def test_seed_generator_tiles_align_to_its_encoder_stride():
  model = models.create_model("seed", 2, num_feat=4, num_down=1, kernel_size=3)
  assert inference.input_multiple(model) == 2
  variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
  sr_fn = inference.make_upscaler(model, variables)
  image = _image(np.random.default_rng(11), 19, 23)
  whole = inference.upscale_image(sr_fn, image, 2, multiple=2)
  # Odd tile 5 -> 6: windows start on even pixels, where the stride-2 convs see the same grid.
  tiled = inference.upscale_image(sr_fn, image, 2, tile=5, tile_pad=8, multiple=2)
  utils.assert_close(tiled, whole, ops=utils.network_ops(variables), magnitude=1.0)


@pytest.mark.numerics
# --- Gray, alpha, outscale.

def test_gray_goes_through_the_model_as_rgb(bicubic_sr_fn):
  gray = _image(np.random.default_rng(4), 9, 11, channels=1)
  out = inference.upscale(bicubic_sr_fn, gray, 2, tile=4, tile_pad=BICUBIC_RADIUS)
  assert out.shape == (18, 22, 1)
  utils.assert_close(out, np.clip(imresize.imresize_np(gray, 2), 0, 1), ops=BICUBIC_OPS,
                     magnitude=1.0)


@pytest.mark.numerics
@pytest.mark.exact("the colour goes through the same compiled sr_fn with or without alpha")
def test_alpha_is_upscaled_separately(strong_sr_fn):
  rng = np.random.default_rng(5)
  rgb, alpha = _image(rng, 12, 10), _image(rng, 12, 10, channels=1)
  by_model_rgb = inference.upscale_image(strong_sr_fn, rgb, 2)
  out = inference.upscale(strong_sr_fn, np.concatenate([rgb, alpha], -1), 2,
                          alpha_upsampler="bicubic")
  assert out.shape == (24, 20, 4)
  np.testing.assert_array_equal(out[..., :3], by_model_rgb)  # Alpha does not touch colour.
  utils.assert_close(out[..., 3:], np.clip(imresize.imresize_np(alpha, 2), 0, 1),
                     ops=BICUBIC_OPS, magnitude=1.0)
  # Through the model, alpha is treated as a gray image: when the colour is the gray image of
  # alpha itself, the output alpha is the gray of the output colour (a mean of 3: 3 roundings).
  gray_rgba = np.concatenate([np.repeat(alpha, 3, -1), alpha], -1)
  out = inference.upscale(strong_sr_fn, gray_rgba, 2, alpha_upsampler="model")
  utils.assert_close(out[..., 3], out[..., :3].mean(-1), ops=3, magnitude=1.0)
  assert np.abs(out[..., 3:] - imresize.imresize_np(alpha, 2)).max() > 1e-2
  la = inference.upscale(strong_sr_fn, np.concatenate([alpha, alpha], -1), 2)
  utils.assert_close(la[..., 0], out[..., :3].mean(-1), ops=3, magnitude=1.0)
  utils.assert_close(la[..., 1], out[..., 3], ops=3, magnitude=1.0)


@pytest.mark.numerics
def test_outscale_resizes_the_model_output(bicubic_sr_fn):
  image = _image(np.random.default_rng(6), 10, 7)
  out = inference.upscale(bicubic_sr_fn, image, 2, outscale=3.5)
  assert out.shape == (35, 25, 3)  # ceil(10 * 3.5), ceil(7 * 3.5)
  x2 = inference.upscale(bicubic_sr_fn, image, 2)
  utils.assert_close(out, np.clip(imresize.imresize_np(x2, 1.75), 0, 1), ops=BICUBIC_OPS,
                     magnitude=1.0)
  # 50 * 1.1 is 55.000000000000007 in floats; MATLAB's ceil must not make it 56.
  assert inference.output_size(50, 10, 1.1) == (55, 11)
  assert inference.upscale(bicubic_sr_fn, _image(np.random.default_rng(7), 50, 10, 1), 2,
                           outscale=1.1).shape == (55, 11, 1)


# --- Loading runs.

def test_load_generator_restores_ema_or_params_from_workdir_or_checkpoint(run_dir):
  workdir, params = run_dir
  config, model, variables = inference.load_generator(str(workdir))
  assert config.model.num_feat == 8 and model.scale == 2 and model.dtype == jnp.float32
  utils.assert_trees_equal(variables["params"], jax.tree.map(lambda p: 3 * p, params))
  _, _, raw = inference.load_generator(checkpoint=str(workdir / "checkpoints" / "7"),
                                       use_ema=False)
  utils.assert_trees_equal(raw["params"], params)
  with pytest.raises(ValueError, match="No checkpoint at step 3"):
    inference.load_generator(str(workdir), which="3")


def test_bf16_computes_in_bfloat16(run_dir):
  workdir, _ = run_dir
  image = _image(np.random.default_rng(8), 8, 8)
  out = {}
  for dtype in ("float32", "bfloat16"):
    _, model, variables = inference.load_generator(str(workdir), dtype=dtype)
    assert model.dtype == jnp.dtype(dtype)
    out[dtype] = inference.make_upscaler(model, variables)(image)
  assert out["bfloat16"].dtype == np.float32
  diff = np.abs(out["bfloat16"] - out["float32"]).max()
  assert 0 < diff < 0.05


def test_missing_config_or_checkpoint_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match="No config.json in"):
    inference.load_generator(str(tmp_path))
  config = utils.tiny_config(str(tmp_path))
  (tmp_path / "config.json").write_text(config.to_json_best_effort())
  with pytest.raises(ValueError, match="No checkpoint in"):
    inference.load_generator(str(tmp_path))
  config = config_base.base_config()
  config.model.name = "bicubic"  # Parameter-free: needs no checkpoint.
  (tmp_path / "config.json").write_text(config.to_json_best_effort())
  _, model, variables = inference.load_generator(str(tmp_path))
  assert isinstance(model, models.Bicubic) and variables == {}


# --- Image files.

@pytest.mark.parametrize("mode,bits", [("L", 8), ("LA", 8), ("RGB", 8), ("RGBA", 8),
                                       ("L", 16), ("LA", 16), ("RGB", 16), ("RGBA", 16)])
def test_png_round_trip_keeps_bit_depth_and_mode(tmp_path, mode, bits):
  levels = 2**bits - 1
  pixels = np.random.default_rng(bits).integers(
      0, levels + 1, (5, 7, image_io.CHANNELS[mode])).astype(np.uint16 if bits == 16 else np.uint8)
  write_png(tmp_path / "in.png", pixels)
  image, info = image_io.read_image(str(tmp_path / "in.png"))
  assert info == image_io.ImageInfo(bits, mode, "png")
  assert image.dtype == np.float32
  np.testing.assert_array_equal(np.round(image * levels), pixels)
  image_io.write_image(str(tmp_path / "out.png"), image, info)
  assert png_header(tmp_path / "out.png") == (bits, PNG_COLOUR_TYPE[mode])
  np.testing.assert_array_equal(read_png(tmp_path / "out.png"), pixels)


def test_quantize_levels():
  x = np.array([[[-0.1, 0.0, 0.5, 1.0, 1.2]]], np.float32)
  assert image_io.quantize(x, 16).tolist() == [[[0, 0, 32768, 65535, 65535]]]
  assert image_io.quantize(x, 8).tolist() == [[[0, 0, 128, 255, 255]]]  # 127.5 rounds to even.


def test_jpeg_read_and_written_as_jpeg_quality_95(tmp_path):
  yy, xx = np.mgrid[0:16, 0:24]
  rgb = np.stack([8 * yy, 6 * xx, 100 + 2 * (xx + yy)], -1).astype(np.uint8)  # Smooth ramps.
  for mode, pixels in (("RGB", rgb), ("L", rgb[..., 0])):
    Image.fromarray(pixels, mode=mode).save(tmp_path / "in.jpg", quality=100)
    image, info = image_io.read_image(str(tmp_path / "in.jpg"))
    assert info == image_io.ImageInfo(8, mode, "jpeg")
    image_io.write_image(str(tmp_path / "out.jpg"), image, info)
    Image.fromarray(pixels, mode=mode).save(tmp_path / "q95.jpg", quality=95)
    written, reference = Image.open(tmp_path / "out.jpg"), Image.open(tmp_path / "q95.jpg")
    assert (written.format, written.mode) == ("JPEG", mode)
    assert written.quantization == reference.quantization
    assert np.abs(np.asarray(written, float) - np.asarray(pixels, float)).mean() < 2
  with pytest.raises(ValueError, match="alpha"):
    image_io.write_image(str(tmp_path / "a.jpg"), np.zeros((2, 2, 4)),
                         image_io.ImageInfo(8, "RGBA", "png"))


def test_jpeg_exif_orientation_is_applied(tmp_path):
  pixels = np.zeros((8, 16, 3), np.uint8)
  pixels[:, :8] = 255  # Left half white.
  exif = Image.Exif()
  exif[0x0112] = 6  # Orientation: the stored image must be turned 90 degrees clockwise.
  Image.fromarray(pixels).save(tmp_path / "camera.jpg", quality=100, exif=exif)
  image, info = image_io.read_image(str(tmp_path / "camera.jpg"))
  assert image.shape == (16, 8, 3) and info.mode == "RGB"
  # Clockwise: the stored left half (white) ends up on top.
  assert image[:6].mean() > 0.9 and image[-6:].mean() < 0.1


def test_palette_and_bilevel_images_and_unreadable_files(tmp_path):
  palette = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4), mode="P")
  palette.putpalette([v for i in range(256) for v in (i, 2 * i % 256, 255 - i)])
  palette.save(tmp_path / "p.png")
  image, info = image_io.read_image(str(tmp_path / "p.png"))
  assert info.mode == "RGB"
  np.testing.assert_array_equal(np.round(image[0, 3] * 255), [3, 6, 252])
  palette.save(tmp_path / "pt.png", transparency=0)
  assert image_io.read_image(str(tmp_path / "pt.png"))[1].mode == "RGBA"
  Image.fromarray(np.eye(4, dtype=bool)).save(tmp_path / "b.png")
  image, info = image_io.read_image(str(tmp_path / "b.png"))
  assert info.mode == "L" and image[..., 0].tolist() == np.eye(4).tolist()

  (tmp_path / "garbage.png").write_bytes(b"not an image at all")
  data = (tmp_path / "p.png").read_bytes()
  (tmp_path / "truncated.png").write_bytes(data[:len(data) // 2])
  for name in ("garbage.png", "truncated.png", "missing.png"):
    with pytest.raises(image_io.UnreadableImageError, match=name):
      image_io.read_image(str(tmp_path / name))


# --- Command line.

def test_output_names():
  rgb, rgba = image_io.ImageInfo(8, "RGB", "jpeg"), image_io.ImageInfo(8, "RGBA", "png")
  assert upscale.output_path("in/a.JPG", rgb, "o") == os.path.join("o", "a_out.jpg")
  assert upscale.output_path("in/a.jpeg", rgb, "o", suffix="") == os.path.join("o", "a.jpeg")
  assert upscale.output_path("in/a.jpg", rgb, "o", ext="png") == os.path.join("o", "a_out.png")
  assert upscale.output_path("in/a.png", rgba, "o", ext="jpg") == os.path.join("o", "a_out.png")
  assert upscale.output_path("in/a.gif", rgb, "o", "x4") == os.path.join("o", "a_x4.png")
  assert upscale.writes_single_file("a.png", "b.png")
  assert not upscale.writes_single_file("a.png,c.png", "b.png")
  assert not upscale.writes_single_file("a.png", "results")


def test_list_inputs_expands_folders_and_lists(tmp_path):
  for name in ("b.png", "a.png", ".hidden.png"):
    (tmp_path / name).write_bytes(b"")
  (tmp_path / "sub").mkdir()
  other = tmp_path / "sub" / "c.jpg"
  other.write_bytes(b"")
  assert upscale.list_inputs(f"{tmp_path}, {other}") == [
      str(tmp_path / "a.png"), str(tmp_path / "b.png"), str(other)]


def test_cli_upscales_a_folder_keeping_depth_and_mode(run_dir, tmp_path):
  workdir, _ = run_dir
  rng = np.random.default_rng(10)
  rgb8 = utils.smooth_image(rng, 20, 16)
  sources = tmp_path / "in"
  sources.mkdir()
  write_png(sources / "rgb.png", rgb8)
  write_png(sources / "rgb16.png", rng.integers(0, 65536, (20, 16, 3)).astype(np.uint16))
  write_png(sources / "gray16.png", rng.integers(0, 65536, (20, 16, 1)).astype(np.uint16))
  write_png(sources / "gray.png", rgb8[..., :1])
  write_png(sources / "rgba.png", np.concatenate([rgb8, rgb8[..., :1]], -1))
  Image.fromarray(rgb8).save(sources / "photo.jpg")
  (sources / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
  (sources / "notes.txt").write_text("not an image")

  result = utils.run_process(
      [sys.executable, "-m", "jaxsr.upscale", f"--workdir={workdir}", f"-i={sources}",
       f"-o={tmp_path / 'out'}", "--tile=6", "--tile_pad=5", "--outscale=3", "--suffix=x3"],
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  assert "broken.png" in result.stderr and "notes.txt" in result.stderr
  out = tmp_path / "out"
  assert sorted(os.listdir(out)) == ["gray16_x3.png", "gray_x3.png", "photo_x3.jpg",
                                     "rgb16_x3.png", "rgb_x3.png", "rgba_x3.png"]
  expected = {"gray16": (16, "L"), "gray": (8, "L"), "rgb16": (16, "RGB"), "rgb": (8, "RGB"),
              "rgba": (8, "RGBA")}
  for stem, (bits, mode) in expected.items():
    assert png_header(out / f"{stem}_x3.png") == (bits, PNG_COLOUR_TYPE[mode])
    assert read_png(out / f"{stem}_x3.png").shape == (60, 48, image_io.CHANNELS[mode])
  with Image.open(out / "photo_x3.jpg") as photo:
    assert (photo.format, photo.mode, photo.size) == ("JPEG", "RGB", (48, 60))
  # The CLI wrote what the library computes (8-bit levels), exactly: the same programs on the
  # same machine.
  _, model, variables = inference.load_generator(str(workdir))
  library = inference.upscale(inference.make_upscaler(model, variables),
                              image_io.read_image(str(sources / "rgb.png"))[0], 2, tile=6,
                              tile_pad=5, outscale=3)
  np.testing.assert_array_equal(read_png(out / "rgb_x3.png"), image_io.quantize(library, 8))


def test_cli_does_not_import_tensorflow_for_8_bit_images(tmp_path):
  write_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
  code = ("import sys; from jaxsr import upscale, image_io; "
          f"image, info = image_io.read_image({str(tmp_path / 'a.png')!r}); "
          f"image_io.write_image({str(tmp_path / 'b.png')!r}, image, info); "
          "assert 'tensorflow' not in sys.modules, 'TF imported'")
  result = utils.run_process([sys.executable, "-c", code],
                             env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-2000:]
