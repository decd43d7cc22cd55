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

from kfactor._lazy import submodule


def __getattr__(name):
    """Loads a lab module (`kfactor.lab.tuning`) on first use."""
    return submodule(__name__, name)


__all__ = []
