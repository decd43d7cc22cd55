"""`FactorNetworks`: what the factor artefact needs of a trained model.

A base class in the template-method style (as keras-tuner's `HyperModel`):
it owns the two operations every factorization offers, `factor_network(task)`
and `save_factors(directory)`, written against a few attributes that a
subclass provides. `kfactor.Factorizer` is one (`class Factorizer(
FactorNetworks, keras.Model)`). Saving is a method of the trained model, as
`keras.Model.export` is, while `kfactor.factors` knows networks, not
trainers: assembly, export and publishing test `isinstance(x,
FactorNetworks)` and never import `kfactor.training`.
"""

from kfactor.factors import saving

import keras


class FactorNetworks:
    """A common factor and task factors, as standalone networks.

    A subclass sets these attributes (a `kfactor.Factorizer` does in its
    `__init__`):

    - `common`: the common factor (images -> `[batch, code_dim]`), a
      `kfactor.CommonFactor`;
    - `task_factors`: dict task -> `kfactor.TaskFactor`, called as
      `factor((images, z_common))` to give that task's logits;
    - `task_names`: tuple of the task names, in order;
    - `num_classes`: dict task -> number of classes;
    - `code_dim`: int, the size of `z_common` and of each task code;
    - `image_shape`: tuple `(height, width, channels)`;
    - `teacher`: the frozen teacher (its name and weights fingerprint go
      into the manifests);
    - `factor_losses`: list of `kfactor.objective.losses.FactorLoss`, the
      objective recorded in the manifests;
    - `value_range` (optional): `(low, high)` of the images, or None.

    Example:

    >>> network = factorizer.factor_network("shape")   # doctest: +SKIP
    >>> paths = factorizer.save_factors("factors")     # doctest: +SKIP
    """

    def factor_network(self, task):
        """A standalone Keras model images -> logits for one task.

        It shares the trained layers (no copy): the common factor and the
        task's factor, with the code's mean (deterministic).
        """
        if task not in self.task_factors:
            raise ValueError(
                f"Unknown task {task!r}. This factorizer has tasks "
                f"{list(self.task_names)}."
            )
        images = keras.Input(shape=self.image_shape, name="images")
        common_code = self.common(images)
        logits = self.task_factors[task]((images, common_code))
        return keras.Model(images, logits, name=f"factor_network_{task}")

    def save_factors(self, directory, overwrite=False, test_accuracy=None):
        """Saves each factor as a SavedModel + manifest under `directory`.

        See `kfactor.factors.saving.save_factors`; returns name -> directory.
        """
        return saving.save_factors(
            self, directory, overwrite=overwrite, test_accuracy=test_accuracy
        )


__all__ = [
    "FactorNetworks",
]
