"""Robbins' Gamma(1, b)-Poisson mixture confidence sequence on one arm's own rate (events per
request), shared by the reference generators (gen_guard_reference.py: the maxRate guard and the
passRate rule; gen_margin_reference.py: the two-bound form of the passMargin rule). Written from
the formula in src/analysis/stats/rate.rs' documentation, independently of the Rust code.

The scripts run from this directory (python3 tests/stats/gen_...py puts it first on sys.path),
so they import this module by its name.
"""
import math

from scipy.optimize import brentq
from scipy.special import gammaln


def log_m(events, exposure, lam, b, a=1.0):
    """log of the mixture martingale at rate `lam`: the Gamma(a, b)-Poisson marginal of
    `events` in `exposure` requests over the Poisson likelihood at `lam`."""
    xl = events * math.log(lam) if events > 0 else 0.0
    return (a * math.log(b) - gammaln(a) + gammaln(a + events) - (a + events) * math.log(b + exposure)
            - xl + lam * exposure)


def bounds(events, exposure, phi, alpha, b):
    """{lam : log M(lam) / phi < ln(1/alpha)}, the upper end capped at 1, the lower 0 without
    events."""
    cut = phi * math.log(1.0 / alpha)
    f = lambda lam: log_m(events, exposure, lam, b) - cut
    mle = events / exposure
    upper = 1.0 if f(1.0) < 0 else brentq(f, max(mle, 1e-300), 1.0, xtol=1e-15, rtol=1e-13)
    if events == 0 or f(1e-300) < 0:
        lower = 0.0
    else:
        lower = brentq(f, 1e-300, mle, xtol=1e-300, rtol=1e-13)
    return lower, upper
