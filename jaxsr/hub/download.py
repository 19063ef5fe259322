"""Verified, resumable downloads of released weights.

`fetch(url, dest, size, sha256)` streams `url` into `<dest>.part` and renames it to `dest` only
after its size and sha256 match. An interrupted download (server gone, timeout, Ctrl-C) keeps
the `.part` file, and the next call asks for the rest (HTTP `Range`; a server that ignores it
sends the whole file again and the part is rewritten). A finished file whose size or sha256
differs is deleted. Errors are `DownloadError`s of one line that name the URL, the file expected
and how to give a local copy instead (`local_hint`, e.g. '--weights=<file>').

`is_direct(url)` tells a file URL from a page (Google Drive, Mega, OneDrive, a repository page)
that a program cannot download from.
"""

import hashlib
import os
from typing import Callable, Optional
import urllib.error
import urllib.parse
import urllib.request

import tqdm

CHUNK = 1 << 20
TIMEOUT_S = 60
_PAGE_HOSTS = ("drive.google.com", "docs.google.com", "mega.nz", "mega.co.nz", "mega.io",
               "onedrive.live.com", "1drv.ms", "pan.baidu.com", "mediafire.com",
               "www.mediafire.com", "icedrive.net", "disk.yandex.ru")
_USER_AGENT = "jaxsr-model-download"


class DownloadError(ValueError):
  """A download that failed or did not verify (one line, with the fix)."""


def is_direct(url: str) -> bool:
  """True for a URL that serves the file itself: http(s), not a sharing page, and on GitHub a
  release asset or raw file, on Hugging Face a `resolve/` URL."""
  parsed = urllib.parse.urlparse(url)
  host = parsed.netloc.lower()
  if parsed.scheme not in ("http", "https") or host in _PAGE_HOSTS:
    return False
  if host == "github.com":
    return "/releases/download/" in parsed.path or "/raw/" in parsed.path
  if host in ("huggingface.co", "hf.co"):
    return "/resolve/" in parsed.path
  return True


def file_name(url: str, fallback: str) -> str:
  """The file name a URL's path ends with (percent-decoded), else `fallback`."""
  name = os.path.basename(urllib.parse.unquote(urllib.parse.urlparse(url).path))
  return name if os.path.splitext(name)[1] else fallback


def sha256_of(path: str) -> str:
  """The hex sha256 of a file."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(CHUNK), b""):
      digest.update(block)
  return digest.hexdigest()


def verify(path: str, size: Optional[int], sha256: Optional[str], what: str) -> None:
  """DownloadError if `path` has another size or sha256 than given (None: not checked)."""
  actual_size = os.path.getsize(path)
  if size is not None and actual_size != size:
    raise DownloadError(f"{what}: {actual_size} bytes, expected {size}")
  if sha256:
    actual = sha256_of(path)
    if actual != sha256.lower():
      raise DownloadError(f"{what}: sha256 {actual}, expected {sha256.lower()}")


def _open(url: str, offset: int):
  headers = {"User-Agent": _USER_AGENT}
  if offset:
    headers["Range"] = f"bytes={offset}-"
  return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)


def _start(url: str, part: str):
  """(response, offset, mode): continues `part` when the server honours the Range request."""
  offset = os.path.getsize(part) if os.path.isfile(part) else 0
  try:
    response = _open(url, offset)
  except urllib.error.HTTPError as e:
    if e.code != 416 or not offset:  # 416: nothing left to send, the part may be whole.
      raise
    return None, offset, "ab"
  if offset and response.status != 206:
    offset = 0  # The server sends the whole file again.
  return response, offset, "ab" if offset else "wb"


def fetch(url: str, dest: str, size: Optional[int], sha256: Optional[str],
          local_hint: str = "--weights=<file>",
          progress: Optional[Callable[[int], None]] = None) -> str:
  """Downloads `url` to `dest` (module docstring); returns `dest`.

  Args:
    url: a direct file URL (`is_direct`).
    dest: final path; `<dest>.part` holds the download until it verifies.
    size, sha256: the expected size in bytes and hex digest (None: not checked).
    local_hint: how the user gives a local copy instead (named in errors).
    progress: called with the bytes of each chunk (tests); default a tqdm bar on terminals.

  Raises:
    DownloadError: HTTP error, no connection, interrupted (the part is kept), or a finished
      file whose size or sha256 differs (the part is deleted).
  """
  name = os.path.basename(dest)
  instead = f"download {name} yourself and pass {local_hint}"
  part = dest + ".part"
  os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
  try:
    response, offset, mode = _start(url, part)
  except urllib.error.HTTPError as e:
    raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}; {instead}") from None
  except (urllib.error.URLError, OSError) as e:
    reason = getattr(e, "reason", None) or e
    raise DownloadError(f"cannot reach {url} ({reason}): offline? {instead}") from None
  received = offset
  if response is not None:
    total = size or (offset + int(response.headers.get("Content-Length") or 0)) or None
    with response, open(part, mode) as out, tqdm.tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
        desc=name, disable=None if progress is None else True) as bar:
      try:
        for block in iter(lambda: response.read(CHUNK), b""):
          out.write(block)
          received += len(block)
          (progress or bar.update)(len(block))
          if size is not None and received > size:
            break
      except (OSError, ValueError) as e:  # Reset, timeout, truncated chunked body.
        raise DownloadError(f"download of {url} interrupted at {received} bytes ({e}); run "
                            f"again to resume, or {instead}") from None
    expected = size or total
    if expected is not None and received < expected:
      raise DownloadError(f"download of {url} interrupted at {received} of {expected} bytes "
                          f"(the server closed the connection); run again to resume, or "
                          f"{instead}")
  try:
    verify(part, size, sha256, f"downloaded {url}")
  except DownloadError as e:
    os.remove(part)
    raise DownloadError(f"{e}; the file was deleted (a changed release or a corrupt "
                        f"transfer): {instead}") from None
  os.replace(part, dest)
  return dest
