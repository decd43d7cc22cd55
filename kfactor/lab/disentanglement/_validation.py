"""Input checks shared by the metrics: shapes, dtypes, NaNs, constant factors.

All metrics take arrays **samples first**: codes `(N, D)` float, factors
`(N, K)` int. Every check raises `ValueError` saying what is wrong and how to
fix it.

Constant factors (zero entropy in the training set) carry no information to
disentangle, and most metrics are undefined for them (MIG divides by the
entropy, the classifiers cannot fit a single class). The rule used by every
metric in `lab.disentanglement`: factors that are constant in the **training**
set are excluded before the metric is computed (so averages run over the
remaining factors), and a `ValueError` is raised when no factor is left.
"""

import numpy as np


def check_codes(codes, name="codes"):
    """Returns `codes` as a finite 2-D float64 array, or raises `ValueError`."""
    try:
        array = np.asarray(codes, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Expected `{name}` to be a numeric array of shape (N, D). "
            f"Received: {name} of type {type(codes).__name__} that cannot "
            f"be converted to float ({error})."
        ) from None
    if array.ndim != 2:
        raise ValueError(
            f"Expected `{name}` to have shape (N, D) (samples first). "
            f"Received: {name}.shape={array.shape}. Fix: reshape a single "
            f"code dimension with `{name}.reshape(-1, 1)`."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"Expected `{name}` to have at least one sample and one "
            f"dimension. Received: {name}.shape={array.shape}."
        )
    if not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        raise ValueError(
            f"Expected `{name}` to contain only finite values. Received: "
            f"{bad} NaN or infinite entries in {name} of shape "
            f"{array.shape}. Fix: check the encoder for diverged weights, "
            "or drop those samples."
        )
    return array


def check_labels(labels, name="factors", ndim=2):
    """Returns integer `labels` (`ndim`-D int64 array), or raises.

    Integer and boolean dtypes are accepted as they are. Float arrays are
    accepted when every value is a whole number (e.g. `[0., 2., 1.]`);
    fractional values raise, since the metrics treat factors as discrete
    classes.
    """
    array = np.asarray(labels)
    shape_hint = "(N, K)" if ndim == 2 else "(N,)"
    if array.ndim != ndim:
        fix = (
            f" Fix: reshape a single factor with `{name}.reshape(-1, 1)`."
            if ndim == 2 and array.ndim == 1
            else ""
        )
        raise ValueError(
            f"Expected `{name}` to have shape {shape_hint} (samples first). "
            f"Received: {name}.shape={array.shape}.{fix}"
        )
    if array.size == 0:
        raise ValueError(
            f"Expected `{name}` to be non-empty. Received: "
            f"{name}.shape={array.shape}."
        )
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating):
        if np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            return array.astype(np.int64)
    raise ValueError(
        f"Expected `{name}` to hold integer class labels (discrete factor "
        f"values). Received: {name} with dtype={array.dtype}"
        + (
            ", including non-integer values"
            if np.issubdtype(array.dtype, np.floating)
            else ""
        )
        + ". Fix: discretize continuous factors first, e.g. "
        f"`np.digitize({name}, bins)`, or map the values to class indices "
        f"with `np.unique({name}, return_inverse=True)`."
    )


def check_same_samples(codes, factors, codes_name="codes", factors_name=None):
    """Raises `ValueError` if `codes` and `factors` differ in sample count."""
    factors_name = factors_name or "factors"
    if codes.shape[0] != factors.shape[0]:
        raise ValueError(
            f"Expected {codes_name} and {factors_name} to have the same "
            f"number of samples. Received: {codes_name}.shape={codes.shape}, "
            f"{factors_name}.shape={factors.shape}."
        )


def check_codes_and_factors(codes, factors, suffix=""):
    """Validates one `(codes, factors)` pair; returns both as arrays."""
    codes_name = f"codes{suffix}"
    factors_name = f"factors{suffix}"
    codes = check_codes(codes, codes_name)
    factors = check_labels(factors, factors_name)
    check_same_samples(codes, factors, codes_name, factors_name)
    return codes, factors


def check_train_test(codes_train, factors_train, codes_test, factors_test):
    """Validates train and test pairs and their agreement in D and K.

    Returns:
        The four arrays, with factors that are constant in the training set
        removed from `factors_train` and `factors_test` (see module doc),
        and the int array of the kept factors' original column indices.
    """
    codes_train, factors_train = check_codes_and_factors(
        codes_train, factors_train, "_train"
    )
    codes_test, factors_test = check_codes_and_factors(
        codes_test, factors_test, "_test"
    )
    if codes_train.shape[1] != codes_test.shape[1]:
        raise ValueError(
            "Expected codes_train and codes_test to have the same number of "
            f"code dimensions. Received: codes_train.shape="
            f"{codes_train.shape}, codes_test.shape={codes_test.shape}."
        )
    if factors_train.shape[1] != factors_test.shape[1]:
        raise ValueError(
            "Expected factors_train and factors_test to have the same number "
            f"of factors. Received: factors_train.shape="
            f"{factors_train.shape}, factors_test.shape={factors_test.shape}."
        )
    keep = informative_factors(factors_train, "factors_train")
    factors_train = factors_train[:, keep]
    factors_test = factors_test[:, keep]
    return codes_train, factors_train, codes_test, factors_test, keep


def informative_factors(factors, name="factors"):
    """Indices of the non-constant columns of `factors`; raises if none."""
    keep = np.flatnonzero(np.ptp(factors, axis=0) > 0)
    if keep.size == 0:
        raise ValueError(
            f"Expected at least one factor in `{name}` that takes more than "
            f"one value. Received: {name}.shape={factors.shape} with every "
            "factor constant (zero entropy), so no metric is defined. Fix: "
            "sample observations in which the factors vary."
        )
    return keep


def check_min_code_dims(codes, minimum, metric):
    """Raises if `codes` has fewer than `minimum` dimensions."""
    if codes.shape[1] < minimum:
        raise ValueError(
            f"Expected codes with at least {minimum} dimensions for {metric} "
            "(it compares the best and second-best code dimension). "
            f"Received: codes.shape={codes.shape}."
        )


def check_num_bins(num_bins):
    """Raises unless `num_bins` is an int >= 1."""
    if isinstance(num_bins, bool) or not isinstance(
        num_bins, (int, np.integer)
    ):
        raise ValueError(
            f"Expected `num_bins` to be a positive int. Received: "
            f"num_bins={num_bins!r}."
        )
    if num_bins < 1:
        raise ValueError(
            f"Expected `num_bins` >= 1. Received: num_bins={num_bins}."
        )


def standardize(train, test):
    """Standardizes both arrays with the train mean and std.

    Dimensions with zero train std are only centred (divided by 1), so
    constant code dimensions do not produce NaNs.
    """
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def check_factor_names(factor_names, num_factors):
    """Returns `factor_names` as a tuple of `num_factors` distinct names."""
    names = tuple(factor_names)
    if len(names) != num_factors or len(set(names)) != len(names):
        raise ValueError(
            f"Expected {num_factors} distinct factor names, one per column "
            f"of the factors. Received: factor_names={list(names)}."
        )
    return names


def check_blocks(blocks, factors, blocks_name, factors_name):
    """Validates a dict name -> codes against `factors`."""
    if not isinstance(blocks, dict) or not blocks:
        raise ValueError(
            f"Expected `{blocks_name}` to be a non-empty dict mapping block "
            "names to code arrays of shape (N, D_b). Received: "
            f"{type(blocks).__name__} {str(blocks):.80}."
        )
    checked = {}
    for name, codes in blocks.items():
        label = f"{blocks_name}[{name!r}]"
        checked[name] = check_codes(codes, label)
        check_same_samples(checked[name], factors, label, factors_name)
    return checked


def check_block_splits(
    blocks_train, factors_train, blocks_test, factors_test, factor_names
):
    """Validates train/test code blocks and factors of a block-level metric.

    Returns `(blocks_train, factors_train, blocks_test, factors_test,
    names)` as checked arrays, or raises `ValueError` naming the problem.
    """
    factors_train = check_labels(factors_train, "factors_train")
    factors_test = check_labels(factors_test, "factors_test")
    if factors_train.shape[1] != factors_test.shape[1]:
        raise ValueError(
            "Expected factors_train and factors_test to have the same number "
            f"of factors. Received: factors_train.shape="
            f"{factors_train.shape}, factors_test.shape={factors_test.shape}."
        )
    names = check_factor_names(factor_names, factors_train.shape[1])
    blocks_train = check_blocks(
        blocks_train, factors_train, "blocks_train", "factors_train"
    )
    blocks_test = check_blocks(
        blocks_test, factors_test, "blocks_test", "factors_test"
    )
    if set(blocks_train) != set(blocks_test):
        raise ValueError(
            "Expected blocks_train and blocks_test to have the same block "
            f"names. Received: {sorted(map(str, blocks_train))} and "
            f"{sorted(map(str, blocks_test))}."
        )
    return blocks_train, factors_train, blocks_test, factors_test, names


def check_positive(minimum, **values):
    """Raises unless every keyword value is an int >= `minimum`."""
    for name, value in values.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or value < minimum
        ):
            raise ValueError(
                f"Expected `{name}` to be an int >= {minimum}. Received: "
                f"{name}={value!r}."
            )
