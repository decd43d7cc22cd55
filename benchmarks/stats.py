"""Summaries of repeated windows: median and spread, paired ratios."""

import statistics


def summary(values):
    """`{median, min, max, q1, q3, n}` of `values`, or None if empty."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    if len(values) > 1:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    else:
        q1 = q3 = values[0]
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "q1": q1,
        "q3": q3,
        "n": len(values),
    }


def rates_by_round(windows):
    """`{round: rate}` of an entry's windows."""
    return {w["round"]: w["rate"] for w in windows}


def paired_ratios(numerator, denominator):
    """Per-round ratios of two entries' rates (rounds both measured)."""
    a, b = rates_by_round(numerator), rates_by_round(denominator)
    return [a[r] / b[r] for r in sorted(a) if r in b and b[r] > 0]
