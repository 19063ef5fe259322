"""Paths to the sample images shipped with the package (see README.md here)."""

import os

SAMPLES_DIR = os.path.dirname(os.path.abspath(__file__))
TRAIN_DIR = os.path.join(SAMPLES_DIR, "train")  # 30 T91 images.
VAL_DIR = os.path.join(SAMPLES_DIR, "Set5")  # Set5 HR.
