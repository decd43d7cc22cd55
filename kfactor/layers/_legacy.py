"""Layer classes under their names before kfactor 0.2, so that models saved
then (the shipped pretrained teacher and baselines) still load.

Keras finds a saved layer's class by its registered name and its weights
by the class's own name, so each old class keeps both here.
"""

from kfactor.layers.conv import MatmulConv2D

import keras


@keras.saving.register_keras_serializable(package="kfactor")
class Conv2D(MatmulConv2D):
    """`MatmulConv2D` as 0.1 saved it (`kfactor>Conv2D`)."""


__all__ = []
