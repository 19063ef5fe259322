"""Real-ESRGAN's synthetic degradations as pure, batched, jit-compiled JAX functions."""
