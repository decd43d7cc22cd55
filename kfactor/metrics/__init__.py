"""Disentanglement metrics and factor-level probes (numpy / scikit-learn).

Standard metrics follow disentanglement_lib (Locatello et al., 2019) with
samples-first arrays: codes `(N, D)` float, factors `(N, K)` int. See
`docs/metrics_reference_check.md` for the comparison with the reference.
"""

from kfactor.metrics._discrete import discrete_mutual_info
from kfactor.metrics.block_mi import BlockMutualInfo
from kfactor.metrics.block_mi import block_mutual_info
from kfactor.metrics.blocks import split_blocks
from kfactor.metrics.dci import block_dci
from kfactor.metrics.dci import dci
from kfactor.metrics.ground_truth import GroundTruthSampler
from kfactor.metrics.mig import mig
from kfactor.metrics.modularity import modularity_explicitness
from kfactor.metrics.probe_mi import ProbeMutualInfo
from kfactor.metrics.probe_mi import probe_mutual_info
from kfactor.metrics.probes import LeakageResult
from kfactor.metrics.probes import ProbeResult
from kfactor.metrics.probes import leakage_matrix
from kfactor.metrics.probes import linear_probe
from kfactor.metrics.sap import sap
from kfactor.metrics.symmetry import symmetric_orientation_accuracy
from kfactor.metrics.symmetry import symmetric_orientation_matches
from kfactor.metrics.vae_scores import beta_vae_score
from kfactor.metrics.vae_scores import factor_vae_score

__all__ = [
    "BlockMutualInfo",
    "GroundTruthSampler",
    "LeakageResult",
    "ProbeMutualInfo",
    "ProbeResult",
    "beta_vae_score",
    "block_dci",
    "block_mutual_info",
    "dci",
    "discrete_mutual_info",
    "factor_vae_score",
    "leakage_matrix",
    "linear_probe",
    "mig",
    "modularity_explicitness",
    "probe_mutual_info",
    "sap",
    "split_blocks",
    "symmetric_orientation_accuracy",
    "symmetric_orientation_matches",
]
