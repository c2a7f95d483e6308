#!/usr/bin/env python3
"""Reference values for the judge's absolute rules on one arm's own rate, written to
guard_reference.json beside this script:

* the `maxRate` guard: the lower end of Robbins' Gamma(1, b)-Poisson mixture confidence
  sequence with the prior's mean at maxRate (b = 1/maxRate requests), at the guard's alpha;
  the canary fails when it is above maxRate;
* the `passRate` rule: the upper end of the same sequence with the default prior (b = 100), at
  the rule's alpha; the canary passes when it is below passRate (zero-error cases included:
  there the bound has the closed form (phi ln(1/alpha) + ln(1 + N/b)) / N).

Independent of the Rust code: written from the formula in src/analysis/stats/rate.rs'
documentation, solved with scipy's brentq (the bounds in gamma_poisson.py, shared with
gen_margin_reference.py); each case also carries a Monte Carlo check (seeded)
that the guard's chance of ever failing a canary exactly at maxRate, over many looks, stays
below its alpha.

Run:  python3 tests/stats/gen_guard_reference.py   (needs numpy and scipy; a venv under
~/.cache/tollgate works: python3 -m venv ~/.cache/tollgate/venv-stats && .../pip install numpy scipy)
"""
import json
import math
import os

import numpy as np

from gamma_poisson import bounds, log_m

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guard_reference.json")


def guard_cases():
    out = []
    # (canary errors, canary requests, phi, alpha, maxRate): the guard's alpha under the
    # default policy is alpha 0.02 x weight share / 2
    for events, n, phi, alpha, max_rate in [
        (0, 1000, 1.0, 0.01, 0.05),
        (5, 100, 1.0, 0.01, 0.05),
        (24, 300, 1.0, 0.01, 0.05),
        (72, 900, 1.0, 0.01, 0.05),
        (120, 1500, 1.3, 0.01, 0.05),
        (40, 1000, 1.0, 0.0067, 0.02),
        (400, 10000, 1.0, 0.01, 0.05),
        (13, 100, 2.0, 0.005, 0.1),
    ]:
        lo, hi = bounds(events, n, phi, alpha, 1.0 / max_rate)
        out.append({"events": events, "requests": n, "phi": phi, "alpha": alpha, "maxRate": max_rate,
                    "lower": lo, "upper": hi, "fails": lo > max_rate})
    return out


def pass_rate_cases():
    out = []
    for events, n, phi, alpha, pass_rate in [
        (0, 300, 1.0, 0.025, 0.01),
        (0, 1500, 1.0, 0.025, 0.01),
        (0, 6000, 1.0, 0.0167, 0.001),
        (3, 3000, 1.0, 0.025, 0.01),
        (30, 3000, 1.5, 0.025, 0.01),
    ]:
        lo, hi = bounds(events, n, phi, alpha, 100.0)
        out.append({"events": events, "requests": n, "phi": phi, "alpha": alpha, "passRate": pass_rate,
                    "lower": lo, "upper": hi, "passes": hi < pass_rate})
    return out


def ever_fails(rate, max_rate, alpha, looks, per_look, runs, seed):
    """Share of seeded runs in which the guard ever fails a canary at `rate` (binomial errors
    per request) over `looks` looks of `per_look` requests."""
    rng = np.random.default_rng(seed)
    b = 1.0 / max_rate
    cut = math.log(1.0 / alpha)
    failed = 0
    for _ in range(runs):
        x, n = 0, 0
        for _ in range(looks):
            x += int(rng.binomial(per_look, rate))
            n += per_look
            # the lower bound is above max_rate exactly when log M(max_rate) >= cut with the
            # estimate above it
            if x / n > max_rate and log_m(x, n, max_rate, b) >= cut:
                failed += 1
                break
    return failed / runs


def main():
    ref = {
        "generator": "tests/stats/gen_guard_reference.py",
        "scipy": __import__("scipy").__version__,
        "numpy": np.__version__,
        "guard": guard_cases(),
        "passRate": pass_rate_cases(),
        "guardMonteCarlo": [
            {"rate": 0.05, "maxRate": 0.05, "alpha": 0.01, "looks": 200, "perLook": 300, "runs": 2000,
             "everFails": ever_fails(0.05, 0.05, 0.01, 200, 300, 2000, 20261207)},
        ],
    }
    with open(OUT, "w") as f:
        json.dump(ref, f, indent=1)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
