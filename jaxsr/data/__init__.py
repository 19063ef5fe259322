"""Host-side input: tf.data pipelines fed by tensorflow-datasets or image folders.

Importing this package hides every accelerator from TensorFlow, so that TF (used only for
the host pipeline) never allocates GPU/TPU memory that JAX needs.
"""

import tensorflow as tf

try:
  tf.config.set_visible_devices([], "GPU")
  tf.config.set_visible_devices([], "TPU")
except (RuntimeError, ValueError):  # Already initialised, or no such device type.
  pass
