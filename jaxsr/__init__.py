"""jaxsr: single-image super-resolution in JAX (Flax Linen, optax, orbax, tf.data)."""

__version__ = "0.1.0"
