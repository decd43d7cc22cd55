"""A kfactor plugin: small pretrained dSprites factors as package data.

Installing it makes the factors discoverable with no path:

    pip install plugins/kfactor-dsprites-factors
    kfactor list            # shows common, shape, scale
"""

from setuptools import setup

setup(
    name="kfactor-dsprites-factors",
    version="0.1.0",
    description="Pretrained dSprites factors (common, shape, scale).",
    python_requires=">=3.10",
    packages=["kfactor_dsprites_factors"],
    package_data={
        "kfactor_dsprites_factors": [
            "factors/*/kfactor.json",
            "factors/*/saved_model/*.pb",
            "factors/*/saved_model/variables/*",
        ]
    },
    install_requires=["kfactor"],
    # The group kfactor discovers; the object is the factors' folder.
    entry_points={
        "kfactor.factors": ["dsprites = kfactor_dsprites_factors:FACTORS_DIR"]
    },
)
