"""Mutual-information lower bounds over critic scores, for the InfoMax term.

Every estimator takes a `[batch, batch]` matrix of critic scores
`scores[i, j] = f(x_i, y_j)` whose positive (joint) pairs are on the diagonal,
or where `joint_sample_mask` says, and returns a scalar lower bound on
I(X; Y) in nats. The textbook bounds are thin wrappers over
`tfp.vi.mutual_information`; `donsker_varadhan_reference` is the variant of
the authors' code, which TFP does not have. They are written in `tf`, as
the TFP functions they wrap (`tf.name_scope`, `tf.convert_to_tensor` with a
`dtype_hint`), not in `keras.ops`.

#### References

[1]: Ben Poole et al. On Variational Bounds of Mutual Information. ICML 2019.
     https://arxiv.org/abs/1905.06922
[2]: Xingyi Yang, Jingwen Ye, Xinchao Wang. Factorizing Knowledge in Neural
     Networks. ECCV 2022. https://arxiv.org/abs/2207.03337
"""

import tensorflow as tf
import tensorflow_probability as tfp

_tfp_mi = tfp.vi.mutual_information


def l2_normalize(x, name=None):
    """`x_i / (||x_i|| + 1e-10)`, row by row (as the authors' code)."""
    with tf.name_scope(name or "l2_normalize"):
        x = tf.convert_to_tensor(x, dtype_hint=tf.float32)
        return x / (tf.norm(x, axis=-1, keepdims=True) + 1e-10)


def cosine_scores(x, y, temperature=1.0, name=None):
    """The cosine critic: `scores[i, j] = cos(x_i, y_j) / temperature`.

    Rows are normalised as `x_i / (||x_i|| + 1e-10)`, like the authors' code.

    Args:
        x: `[batch, dim]` features.
        y: `[batch, dim]` features.
        temperature: positive divisor of the cosine similarities.
        name: name scope.

    Returns:
        A `[batch, batch]` score matrix.

    Example:

    >>> scores = cosine_scores(tf.eye(3), tf.eye(3))
    >>> tf.linalg.diag_part(scores).numpy().tolist()
    [1.0, 1.0, 1.0]
    """
    with tf.name_scope(name or "cosine_scores"):
        return (
            tf.matmul(l2_normalize(x), l2_normalize(y), transpose_b=True)
            / temperature
        )


def info_nce(scores, joint_sample_mask=None, name=None):
    """InfoNCE bound (van den Oord et al. 2018), via TFP.

    ```none
    I_NCE = E_i[ f(x_i, y_i) - log (1/B) sum_j exp f(x_i, y_j) ]  <=  log B
    ```

    Example:

    >>> float(info_nce(tf.eye(4) * 20.0)) > 1.3
    True
    """
    with tf.name_scope(name or "info_nce"):
        scores = tf.convert_to_tensor(scores, dtype_hint=tf.float32)
        if scores.shape[-1] is not None:
            return _tfp_mi.lower_bound_info_nce(
                logu=scores, joint_sample_mask=joint_sample_mask
            )
        # TFP 0.25 reads the static batch size (`logu.shape[-1]`), which is
        # unknown inside Keras's traced train step: same formula, dynamic n.
        if joint_sample_mask is None:
            joint = tf.reduce_mean(tf.linalg.diag_part(scores), axis=-1)
        else:
            joint = tf.reduce_mean(
                tf.boolean_mask(scores, tf.cast(joint_sample_mask, tf.bool)),
                axis=-1,
            )
        log_n = tf.math.log(tf.cast(tf.shape(scores)[-1], scores.dtype))
        marginal = tf.reduce_mean(tf.reduce_logsumexp(scores, -1), -1) - log_n
        return joint - marginal


def info_nce_with_memory(scores, memory_scores, memory_valid=None, name=None):
    """InfoNCE whose negatives are the batch and `K` remembered samples.

    `scores[i, j] = f(x_i, y_j)` over the batch (positives on the
    diagonal), `memory_scores[i, k] = f(x_i, m_k)` against a memory of
    earlier `y` samples, of which `memory_valid` (a `[K]` boolean mask, all
    by default) says which hold one:

    ```none
    I = E_i[ f(x_i, y_i) - log (1/(B + K)) (sum_j exp f(x_i, y_j)
                                            + sum_k exp f(x_i, m_k)) ]
      <= log(B + K)
    ```

    with `K` the number of valid memory rows. It is the InfoNCE bound with
    `B + K` candidates, so its ceiling rises with the memory.

    Example:

    >>> ideal = 50.0 * tf.eye(4)          # each x names its own y
    >>> memory = tf.zeros((4, 60))        # 60 remembered negatives
    >>> round(float(info_nce_with_memory(ideal, memory - 50.0)), 3)
    4.159
    """
    with tf.name_scope(name or "info_nce_with_memory"):
        scores = tf.convert_to_tensor(scores, dtype_hint=tf.float32)
        memory_scores = tf.convert_to_tensor(memory_scores, dtype=scores.dtype)
        batch = tf.cast(tf.shape(scores)[-1], scores.dtype)
        if memory_valid is None:
            remembered = tf.cast(tf.shape(memory_scores)[-1], scores.dtype)
        else:
            memory_valid = tf.convert_to_tensor(memory_valid, dtype=tf.bool)
            remembered = tf.reduce_sum(tf.cast(memory_valid, scores.dtype))
            memory_scores = tf.where(
                memory_valid,
                memory_scores,
                tf.constant(-float("inf"), scores.dtype),
            )
        candidates = tf.concat([scores, memory_scores], axis=-1)
        joint = tf.reduce_mean(tf.linalg.diag_part(scores), axis=-1)
        marginal = tf.reduce_mean(
            tf.reduce_logsumexp(candidates, axis=-1), axis=-1
        ) - tf.math.log(batch + remembered)
        return joint - marginal


def jensen_shannon(scores, joint_sample_mask=None, name=None):
    """Jensen-Shannon bound (Nowozin et al. 2016), via TFP.

    ```none
    I_JS = -E_p[softplus(-f)] - E_{p(x)p(y)}[softplus(f)]
    ```

    It is a bound on the JS divergence, maximised to train the critic, not a
    value in nats of I(X; Y).

    Example:

    >>> confident = 40.0 * tf.eye(4) - 20.0  # joint 20, marginal -20
    >>> float(jensen_shannon(confident)) > -0.01
    True
    """
    with tf.name_scope(name or "jensen_shannon"):
        return _tfp_mi.lower_bound_jensen_shannon(
            logu=tf.convert_to_tensor(scores, dtype_hint=tf.float32),
            joint_sample_mask=joint_sample_mask,
        )


def nguyen_wainwright_jordan(scores, joint_sample_mask=None, name=None):
    """NWJ / MINE-f bound (Nguyen, Wainwright, Jordan 2010), via TFP.

    ```none
    I_NWJ = E_p[f(x, y)] - (1/e) E_{p(y)}[ E_{p(x)}[exp f(x, y)] ]
    ```

    Example:

    >>> float(nguyen_wainwright_jordan(tf.zeros((4, 4))))  # doctest: +ELLIPSIS
    -0.367...
    """
    with tf.name_scope(name or "nguyen_wainwright_jordan"):
        return _tfp_mi.lower_bound_nguyen_wainwright_jordan(
            logu=tf.convert_to_tensor(scores, dtype_hint=tf.float32),
            joint_sample_mask=joint_sample_mask,
        )


def donsker_varadhan_reference(scores, joint_sample_mask=None, name=None):
    """The Donsker-Varadhan-style bound of the authors' `InfoMax_loss`.

    With `M` the joint mask (identity by default) and `B` the batch size, both
    expectations run over all `B^2` entries, as in the reference code:

    ```none
    E_joint    = (1/B^2) sum_ij M_ij f_ij
    E_marginal = (1/B^2) sum_ij exp(f_ij (1 - M_ij))
    I_DV_ref   = E_joint - log E_marginal
    ```

    Two quirks are kept on purpose: the positives are divided by `B^2` (not
    `B`), and each masked entry adds `exp(0) = 1` to the marginal term. So
    the positive pairs weigh only `1/B` and the bound mostly rewards low
    off-diagonal scores: with the cosine critic it reaches about 0.98 (B=128)
    when the two feature sets are anti-aligned (all scores -1), but only
    about `1/B` for aligned, mutually orthogonal features. The InfoMax loss
    is its negative.

    Example:

    >>> collapsed = tf.ones((128, 128))   # every pair scores cos = 1
    >>> round(float(donsker_varadhan_reference(collapsed)), 3)
    -0.987
    """
    with tf.name_scope(name or "donsker_varadhan_reference"):
        scores = tf.convert_to_tensor(scores, dtype_hint=tf.float32)
        if joint_sample_mask is None:
            mask = tf.eye(
                tf.shape(scores)[-2],
                num_columns=tf.shape(scores)[-1],
                dtype=scores.dtype,
            )
        else:
            mask = tf.cast(joint_sample_mask, scores.dtype)
        joint = tf.reduce_mean(scores * mask, axis=[-2, -1])
        marginal = tf.reduce_mean(tf.exp(scores * (1.0 - mask)), axis=[-2, -1])
        return joint - tf.math.log(marginal)


ESTIMATORS = {
    "dv": donsker_varadhan_reference,
    "infonce": info_nce,
    "jsd": jensen_shannon,
    "nwj": nguyen_wainwright_jordan,
}


def get_estimator(name):
    """Returns the bound registered under `name` (see `ESTIMATORS`).

    Example:

    >>> get_estimator("infonce") is info_nce
    True
    """
    if name not in ESTIMATORS:
        raise ValueError(
            f"Unknown mutual-information estimator {name!r}. Expected one of "
            f"{sorted(ESTIMATORS)}."
        )
    return ESTIMATORS[name]


__all__ = [
    "ESTIMATORS",
    "cosine_scores",
    "donsker_varadhan_reference",
    "get_estimator",
    "info_nce",
    "info_nce_with_memory",
    "jensen_shannon",
    "l2_normalize",
    "nguyen_wainwright_jordan",
]
