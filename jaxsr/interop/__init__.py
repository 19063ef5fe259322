"""Reading foreign weights (PyTorch `.pth` / `.safetensors` of BasicSR, Real-ESRGAN, the
official repositories and the old ESRGAN layout): files, architecture detection (one rule table
per family in `families/`), and the mapping onto Linen variables (`variables`)."""
