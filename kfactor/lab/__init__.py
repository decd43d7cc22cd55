"""The lab: what reproduces and evaluates the paper on top of the core.

- `datasets`: procedural dSprites, its official files, 3dshapes, TFDS;
- `disentanglement`: disentanglement and leakage scores (a port of
  disentanglement_lib's, numpy and scikit-learn);
- `evaluation`: codes, reports and plots of a factorization;
- `baselines`: the KD student and single-task networks;
- `teacher`: the teacher recipe (loss weights, warm-up + cosine Adam);
- `tuning`: a keras-tuner hypermodel of the factorization;
- `demo`: `kfactor demo`, its configuration, report and shipped artefacts
  (`pretrained/`).

It needs the `lab` extra (`pip install 'kfactor[lab]'`; `tuning` also
`kfactor[tune]`). The core (`kfactor` without `kfactor.lab`) never
imports it: tests/test_layout.py checks that.
"""

import importlib


def __getattr__(name):
    """Loads a lab module (`kfactor.lab.tuning`) on first use."""
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = []
