"""Models by OpenModelDB id (`jaxsr.hub`): registries, verified resumable downloads from a local
HTTP server started by the test, the cache, and `--model=<id>` in upscale / export / init_from.

The served file is a fixture written by tests/data/make_basicsr_golden.py (an SRVGGNetCompact
x4, OpenModelDB's 'compact')."""

import hashlib
import http.server
import json
import os
import re
import shutil
import sys
import threading

import jax
import numpy as np
from PIL import Image
import pytest

from jaxsr import convert
from jaxsr import inference
from jaxsr import train
from jaxsr.hub import cache
from jaxsr.hub import download
from jaxsr.hub import registry
from jaxsr.interop import load as interop_load
from tests import utils

DATA = os.path.join(os.path.dirname(__file__), "data")
FIXTURE = os.path.join(DATA, "basicsr", "srvgg_x4.pth")
MODEL_ID = "4x-test-compact"


class _Server:
  """A local HTTP server of `files` (name -> bytes) with `Range` support (off: `ranges =
  False`); `requests` logs (path, Range header); `cut[name] = n` sends the full Content-Length
  but closes after n bytes."""

  def __init__(self, files):
    self.files, self.requests, self.cut, self.ranges = dict(files), [], {}, True
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def do_GET(self):  # noqa: N802 (http.server's name)
        name = self.path.lstrip("/")
        server.requests.append((name, self.headers.get("Range")))
        if name not in server.files:
          self.send_error(404, "Not Found")
          return
        data = server.files[name]
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and server.ranges:
          start = int(match.group(1))
          if start >= len(data):
            self.send_error(416, "Range Not Satisfiable")
            return
          self.send_response(206)
          self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
          self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if name in server.cut:
          body = body[:server.cut.pop(name)]
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

      def log_message(self, *args):  # Quiet.
        pass

    self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
    self.thread.start()

  def url(self, name):
    return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

  def close(self):
    self.httpd.shutdown()
    self.httpd.server_close()


@pytest.fixture
def server():
  with open(FIXTURE, "rb") as f:
    s = _Server({"srvgg_x4.pth": f.read()})
  yield s
  s.close()


def _entry(urls, sha256=None, size=None, architecture="compact", scale=4):
  with open(FIXTURE, "rb") as f:
    data = f.read()
  return {"name": "Test Compact", "author": ["tester", "second"], "license": "CC0-1.0",
          "architecture": architecture, "scale": scale,
          "resources": [{"platform": "pytorch", "type": "pth",
                         "size": len(data) if size is None else size,
                         "sha256": sha256 or hashlib.sha256(data).hexdigest(),
                         "urls": list(urls)}]}


def _registry_file(tmp_path, entry, model_id=MODEL_ID):
  path = tmp_path / f"{model_id}.json"
  path.write_text(json.dumps(entry))
  return str(path)


# --- Registries.

def test_registry_reads_every_openmodeldb_form(tmp_path):
  entry = _entry(["https://example.com/a.pth"])
  single = _registry_file(tmp_path, entry)
  folder = tmp_path / "folder"
  folder.mkdir()
  (folder / "2x-b.json").write_text(json.dumps({**entry, "scale": 2}))
  listed = tmp_path / "list.json"
  listed.write_text(json.dumps([{**entry, "id": "c"}]))
  mapped = tmp_path / "map.json"
  mapped.write_text(json.dumps({"models": {"d": entry}}))
  reg = registry.Registry([single, str(folder), str(listed), str(mapped)], builtin="")
  assert [e.id for e in reg.entries()] == [MODEL_ID, "2x-b", "c", "d"]
  found = reg.lookup("4X-TEST-COMPACT")  # One case-insensitive match.
  assert (found.id, found.scale, found.author, found.jaxsr_archs) == (
      MODEL_ID, 4, "tester, second", ("srvgg",))
  assert reg.lookup("2x-b").scale == 2
  with pytest.raises(registry.RegistryError, match=r"unknown model '4x-test-compakt'; did "
                     r"you mean 4x-test-compact\?.*--list_models"):
    reg.lookup("4x-test-compakt")
  bad = tmp_path / "bad.json"
  bad.write_text(json.dumps({"x": {"architecture": "compact"}}))
  with pytest.raises(registry.RegistryError, match="entry 'x' is not an OpenModelDB model"):
    registry.read_registry(str(bad))
  with pytest.raises(registry.RegistryError, match="no such file or folder"):
    registry.read_registry(str(tmp_path / "missing.json"))


def test_builtin_registry_entries_can_be_run_and_verified():
  entries = registry.Registry().entries()
  assert len(entries) >= 10
  for entry in entries:
    resource = entry.weights()  # Raises for an architecture jaxsr does not run.
    assert re.fullmatch(r"[0-9a-f]{64}", resource.sha256 or ""), entry.id
    assert resource.size and resource.size > 0, entry.id
    assert any(download.is_direct(url) for url in resource.urls), entry.id
    assert entry.license and entry.license != "unknown", entry.id
    assert entry.scale in (1, 2, 3, 4, 8), entry.id


def test_direct_urls_and_pages():
  assert download.is_direct("https://github.com/o/r/releases/download/v1/m.pth")
  assert download.is_direct("https://huggingface.co/o/r/resolve/main/m.safetensors")
  assert not download.is_direct("https://github.com/o/r")
  assert not download.is_direct("https://huggingface.co/o/r/blob/main/m.pth")
  assert not download.is_direct("https://drive.google.com/file/d/abc/view")
  assert not download.is_direct("https://mega.nz/#!abc")
  assert download.file_name("https://h/o/models%2F4x-ESRGAN.pth", "x.pth") == "4x-ESRGAN.pth"
  assert download.file_name("https://h/download?id=3", "x.pth") == "x.pth"


# --- Download, verify, cache.

def _workdir(tmp_path, entry, **kwargs):
  return cache.model_workdir(MODEL_ID, [_registry_file(tmp_path, entry)],
                             root=str(tmp_path / "cache"), **kwargs)


def test_download_converts_once_then_the_cache_answers_without_a_request(tmp_path, server,
                                                                           capsys):
  entry = _entry([server.url("srvgg_x4.pth")])
  workdir = _workdir(tmp_path, entry)
  assert server.requests == [("srvgg_x4.pth", None)]
  cached_file = tmp_path / "cache" / "models" / MODEL_ID / "srvgg_x4.pth"
  with open(FIXTURE, "rb") as f:
    assert cached_file.read_bytes() == f.read()
  assert not list(cached_file.parent.glob("*.part")) and not list(
      cached_file.parent.glob("workdir.tmp-*"))
  assert "licence CC0-1.0" in capsys.readouterr().err
  assert _workdir(tmp_path, entry) == workdir
  assert len(server.requests) == 1  # No request the second time,
  assert capsys.readouterr().err == ""  # and the licence was printed once.
  # The cached workdir holds the fixture's weights, as `jaxsr.convert` writes them.
  config, _, variables = inference.load_generator(workdir)
  assert (config.model.name, config.scale) == ("srvgg", 4)
  expected = interop_load.load_variables(FIXTURE).variables
  utils.assert_trees_equal(jax.device_get(variables), expected)


def test_server_gone_mid_file_then_resumed_with_a_range_request(tmp_path, server):
  entry = _entry([server.url("srvgg_x4.pth")])
  size = entry["resources"][0]["size"]
  server.cut["srvgg_x4.pth"] = 10000
  with pytest.raises(download.DownloadError,
                     match=rf"interrupted at 10000 of {size} bytes.*run again to resume"):
    _workdir(tmp_path, entry)
  part = tmp_path / "cache" / "models" / MODEL_ID / "srvgg_x4.pth.part"
  assert part.stat().st_size == 10000  # Kept for the next run.
  _workdir(tmp_path, entry)
  assert server.requests[-1] == ("srvgg_x4.pth", "bytes=10000-")
  assert not part.exists()


def test_a_server_without_ranges_sends_the_whole_file_again(tmp_path, server):
  entry = _entry([server.url("srvgg_x4.pth")])
  server.cut["srvgg_x4.pth"], server.ranges = 5000, False
  with pytest.raises(download.DownloadError, match="interrupted at 5000 of"):
    _workdir(tmp_path, entry)
  workdir = _workdir(tmp_path, entry)  # A 200 answer to the Range request: rewritten from 0.
  assert server.requests[-1] == ("srvgg_x4.pth", "bytes=5000-")
  with open(FIXTURE, "rb") as f:
    assert (tmp_path / "cache" / "models" / MODEL_ID / "srvgg_x4.pth").read_bytes() == f.read()
  assert os.path.isfile(os.path.join(workdir, "config.json"))


def test_a_registry_served_over_http(tmp_path, server):
  entry = _entry([server.url("srvgg_x4.pth")])
  server.files["models.json"] = json.dumps([{**entry, "id": MODEL_ID}]).encode()
  found = registry.Registry([server.url("models.json")]).lookup(MODEL_ID)
  assert found.origin == server.url("models.json") and found.resources[0].urls == (
      server.url("srvgg_x4.pth"),)
  with pytest.raises(registry.RegistryError, match=r"--model_registry=.*/missing\.json: cannot "
                     r"fetch it \(HTTP 404 Not Found\)$"):
    registry.Registry([server.url("missing.json")])


def test_wrong_sha256_deletes_the_download_and_names_both_hashes(tmp_path, server):
  wrong = "0" * 64
  entry = _entry([server.url("srvgg_x4.pth")], sha256=wrong)
  with open(FIXTURE, "rb") as f:
    actual = hashlib.sha256(f.read()).hexdigest()
  with pytest.raises(download.DownloadError) as error:
    _workdir(tmp_path, entry)
  message = str(error.value)
  assert actual in message and wrong in message and "\n" not in message
  folder = tmp_path / "cache" / "models" / MODEL_ID
  assert not list(folder.glob("srvgg_x4.pth*")) and not (folder / "workdir").exists()


def test_http_errors_offline_and_pages_are_one_line_naming_the_fix(tmp_path, server):
  with pytest.raises(download.DownloadError, match=r"HTTP 404 Not Found; download gone\.pth yourself and "
                     r"pass --weights=<file>"):
    _workdir(tmp_path, _entry([server.url("gone.pth")]))
  closed = f"http://127.0.0.1:{utils.free_port()}/srvgg_x4.pth"
  with pytest.raises(download.DownloadError, match=rf"cannot reach {re.escape(closed)} .*"
                     r"offline\? download srvgg_x4\.pth yourself and pass --weights=<file>"):
    _workdir(tmp_path, _entry([closed]))
  page = "https://drive.google.com/file/d/abc/view"
  with pytest.raises(download.DownloadError, match=rf"only on a page a program cannot download "
                     rf"from \({re.escape(page)}\).*--weights=<file>"):
    _workdir(tmp_path, _entry([page]))
  with pytest.raises(registry.RegistryError, match="model 4x-test-compact is a 'atd' model, an "
                     "architecture jaxsr does not run"):
    _workdir(tmp_path, _entry([server.url("srvgg_x4.pth")], architecture="atd"))
  with pytest.raises(registry.RegistryError, match="registry says x2 but .* is x4"):
    _workdir(tmp_path, _entry([server.url("srvgg_x4.pth")], scale=2))


def test_a_local_copy_is_verified_and_used_without_network(tmp_path):
  entry = _entry(["https://example.invalid/srvgg_x4.pth"])
  workdir = _workdir(tmp_path, entry, weights=FIXTURE)
  assert os.path.isfile(os.path.join(workdir, "config.json"))
  other = tmp_path / "other.pth"
  shutil.copy(os.path.join(DATA, "basicsr", "msrresnet_x4.pth"), other)
  with pytest.raises(download.DownloadError, match="not the weights of model 4x-test-compact"):
    _workdir(tmp_path, entry, weights=str(other))


def test_init_from_model_id_gives_the_released_weights(tmp_path, server, monkeypatch):
  registry_path = _registry_file(tmp_path, _entry([server.url("srvgg_x4.pth")]))
  expected = interop_load.load_variables(FIXTURE)
  like = interop_load.abstract_variables(expected.arch, expected.hparams)
  like = jax.tree.map(lambda s: jax.numpy.zeros(s.shape, s.dtype), like)
  monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
  got = train.load_init_variables(f"model:{MODEL_ID}", like, "srvgg", 4, registry_path)
  with pytest.raises(ValueError, match=r"init_from=model:nope: unknown model 'nope'"):
    train.load_init_variables("model:nope", like, "srvgg", 4, registry_path)
  utils.assert_trees_equal(jax.device_get(got), expected.variables)


# --- The programs.

def _cli_env(tmp_path):
  return utils.process_env(JAXSR_CACHE=str(tmp_path / "cache"))


def test_upscale_by_model_id_equals_the_converted_workdir(tmp_path, server):
  registry_path = _registry_file(tmp_path, _entry([server.url("srvgg_x4.pth")]))
  image = (utils.smooth_image(np.random.default_rng(0), 13, 17) * 255).astype(np.uint8)
  Image.fromarray(image).save(tmp_path / "photo.png")
  by_id = [f"--model={MODEL_ID}", f"--model_registry={registry_path}",
           f"--input={tmp_path / 'photo.png'}"]
  first = utils.run_process([sys.executable, "-m", "jaxsr.upscale", *by_id,
                             f"--output={tmp_path / 'a.png'}"], env=_cli_env(tmp_path),
                            check=True)
  assert first.stderr.count("licence CC0-1.0") == 1
  second = utils.run_process([sys.executable, "-m", "jaxsr.upscale", *by_id,
                              f"--output={tmp_path / 'b.png'}"], env=_cli_env(tmp_path),
                             check=True)
  assert "licence" not in second.stderr and len(server.requests) == 1
  convert.convert(FIXTURE, "auto", str(tmp_path / "direct"))
  utils.run_process([sys.executable, "-m", "jaxsr.upscale", f"--workdir={tmp_path / 'direct'}",
                     f"--input={tmp_path / 'photo.png'}", f"--output={tmp_path / 'c.png'}"],
                    env=_cli_env(tmp_path), check=True)
  outputs = [np.asarray(Image.open(tmp_path / f"{n}.png")) for n in "abc"]
  assert outputs[0].shape == (52, 68, 3)
  # Same weights, same program, same machine: the same bytes.
  np.testing.assert_array_equal(outputs[0], outputs[2])
  np.testing.assert_array_equal(outputs[1], outputs[2])
  listing = utils.run_process([sys.executable, "-m", "jaxsr.upscale", "--list_models",
                               f"--model_registry={registry_path}"], env=_cli_env(tmp_path),
                              check=True).stdout
  row = next(line for line in listing.splitlines() if line.startswith(MODEL_ID))
  assert row.split() == [MODEL_ID, "compact", "x4", "CC0-1.0", "yes"]
  assert re.search(r"^4x-realesrgan-x4plus\s+esrgan\s+x4\s+BSD-3-Clause\s+no$", listing,
                   re.MULTILINE)


def test_cli_refuses_an_architecture_it_does_not_run_in_one_line(tmp_path, server):
  registry_path = _registry_file(tmp_path, _entry([server.url("srvgg_x4.pth")],
                                                  architecture="atd"))
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
  result = utils.run_process([sys.executable, "-m", "jaxsr.upscale", f"--model={MODEL_ID}",
                              f"--model_registry={registry_path}", f"--input={tmp_path}/x.png",
                              f"--output={tmp_path}/y.png"], env=_cli_env(tmp_path))
  assert result.returncode == 1, result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      "error: model 4x-test-compact is a 'atd' model, an architecture jaxsr does not run (it "
      f"runs: {', '.join(sorted(registry.ARCHITECTURES))})")
  assert not server.requests


def test_export_by_model_id_with_a_local_copy(tmp_path):
  registry_path = _registry_file(tmp_path, _entry(["https://example.invalid/srvgg_x4.pth"]))
  result = utils.run_process(
      [sys.executable, "-m", "jaxsr.export", f"--model={MODEL_ID}", f"--model_registry={registry_path}",
       f"--weights={FIXTURE}", "--format=stablehlo"], env=_cli_env(tmp_path), cwd=str(tmp_path),
      check=True)
  output = tmp_path / f"{MODEL_ID}.stablehlo"
  assert result.stdout.strip().splitlines()[-1] == f"{MODEL_ID}.stablehlo" and output.is_file()
  meta = json.loads((tmp_path / f"{MODEL_ID}.stablehlo.metadata.json").read_text())
  assert meta["source"]["openmodeldb_id"] == MODEL_ID and meta["scale"] == 4
