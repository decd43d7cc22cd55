"""Pretrained dSprites factors for kfactor, found via the `kfactor.factors`
entry point (`kfactor.load_factors()` with no argument)."""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
#: The folder holding one directory per factor (common, shape, scale).
FACTORS_DIR = os.path.join(HERE, "factors")
