"""Classification heads."""

import keras


def classification_head(num_classes, name):
    """A linear head initialised like mmcls's `LinearClsHead` (N(0, 0.01))."""
    return keras.layers.Dense(
        num_classes,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        name=name,
    )


__all__ = [
    "classification_head",
]
