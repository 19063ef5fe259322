"""Released models by name: an OpenModelDB id -> a verified download -> a cached jaxsr workdir.

  python -m jaxsr.upscale --model=4x-realesrgan-x4plus -i photo.jpg -o photo_x4.png
  python -m jaxsr.upscale --list_models

Rooms:
  registry.py  the entries (OpenModelDB's JSON format): the built-in `models.json`, then any
               `--model_registry` (a model file, a folder of them, a JSON list or id map, a URL);
  download.py  resumable HTTP download to a temporary name, renamed once size and sha256 match;
  cache.py     `$JAXSR_CACHE/models/<id>/` (default `~/.cache/jaxsr`): the weights and the
               workdir `jaxsr.convert` makes of them; `model_workdir(id)` is all that
               `jaxsr.upscale`, `jaxsr.export` and `init_from=model:<id>` ask for.
"""
