"""Installs kfactor: Knowledge Factorization for Keras 3 (TF backend)."""

import pathlib
import re

from setuptools import find_packages
from setuptools import setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"',
    (HERE / "kfactor" / "version.py").read_text(),
).group(1)

setup(
    name="kfactor",
    version=VERSION,
    description=(
        "Knowledge Factorization (Yang, Ye, Wang, ECCV 2022) for Keras 3: "
        "factorize a frozen teacher into assemblable factor networks."
    ),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["kfactor", "kfactor.*"]),
    include_package_data=True,
    # The demo's pretrained teacher (examples/make_pretrained_teacher.py).
    package_data={"kfactor": ["pretrained/*.keras", "pretrained/*.json"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "tensorflow-probability>=0.24",
        # TFP 0.25 checks at import time that tf-keras is installed, although
        # kfactor never uses it (no `tfp.layers`).
        "tf-keras>=2.16",
        "tensorflow-datasets>=4.9",
        "keras-tuner>=1.4",
        "absl-py>=1.0",
        "numpy>=1.24",
        "scikit-learn>=1.3",
        "matplotlib>=3.7",
        "h5py>=3.8",
        # keras.callbacks.TensorBoard needs it; TF 2.21 no longer pulls it in.
        "tensorboard>=2.16",
    ],
    extras_require={
        "dev": ["pytest>=7", "pytest-xdist>=3", "ruff>=0.4"],
        # `kfactor serve`: KServe's ModelServer (TF Serving's REST API). It
        # holds protobuf below 7, which TF 2.21 accepts (>=6.31.1,<8).
        "serve": ["kserve>=0.21,<1"],
    },
    entry_points={"console_scripts": ["kfactor=kfactor.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
