"""Disentanglement metrics and factor-level probes (numpy / scikit-learn).

Standard metrics follow disentanglement_lib (Locatello et al., 2019) with
samples-first arrays: codes `(N, D)` float, factors `(N, K)` int. See
`docs/metrics_reference_check.md` for the comparison with the reference.
"""

from kfactor.lab.disentanglement._discrete import discrete_mutual_info
from kfactor.lab.disentanglement.block_mi import BlockMutualInfo
from kfactor.lab.disentanglement.block_mi import block_mutual_info
from kfactor.lab.disentanglement.blocks import split_blocks
from kfactor.lab.disentanglement.dci import block_dci
from kfactor.lab.disentanglement.dci import dci
from kfactor.lab.disentanglement.ground_truth import GroundTruthSampler
from kfactor.lab.disentanglement.mig import mig
from kfactor.lab.disentanglement.modularity import modularity_explicitness
from kfactor.lab.disentanglement.probe_mi import ProbeMutualInfo
from kfactor.lab.disentanglement.probe_mi import probe_mutual_info
from kfactor.lab.disentanglement.probes import LeakageResult
from kfactor.lab.disentanglement.probes import ProbeResult
from kfactor.lab.disentanglement.probes import SubspaceProbeResult
from kfactor.lab.disentanglement.probes import leakage_matrix
from kfactor.lab.disentanglement.probes import linear_probe
from kfactor.lab.disentanglement.probes import principal_subspace_probe
from kfactor.lab.disentanglement.sap import sap
from kfactor.lab.disentanglement.symmetry import symmetric_orientation_accuracy
from kfactor.lab.disentanglement.symmetry import symmetric_orientation_matches
from kfactor.lab.disentanglement.vae_scores import beta_vae_score
from kfactor.lab.disentanglement.vae_scores import factor_vae_score

__all__ = [
    "BlockMutualInfo",
    "GroundTruthSampler",
    "LeakageResult",
    "ProbeMutualInfo",
    "ProbeResult",
    "SubspaceProbeResult",
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
    "principal_subspace_probe",
    "probe_mutual_info",
    "sap",
    "split_blocks",
    "symmetric_orientation_accuracy",
    "symmetric_orientation_matches",
]
