#!/usr/bin/env python3
"""Reference values for the judge's non-inferiority rule (`passMargin`), written to
margin_reference.json beside this script.

The rule's test (src/analysis/stats/difference.rs): an e-value against
H0: canary rate - baseline rate >= m (events per request, each arm's counts Poisson), whose
numerator mixes "both arms at one rate lambda" over a Gamma(1, 100) prior and whose denominator
is the null's best fit. Written independently of the Rust code: the null's best fit is found
here by numerical maximisation (scipy's bounded scalar minimiser over the baseline's rate on the
boundary lambda_c = lambda_b + m) instead of the closed-form root the Rust code uses, and the
mixture by numerical integration (scipy.integrate.quad) instead of the Gamma closed form. The
dual upper bound is found with brentq.

Also, seeded simulations (numpy), at 10 requests per second per arm and 30-s looks:
* validity: a canary exactly at the margin (1.5% against 1%) is ever passed in at most alpha of
  the runs over 120 looks;
* what the rule buys: minutes to pass for a healthy canary at 1% and 0.1% and 0 errors, for this
  test without and with the prior from an hour of baseline history, for the rule's first
  form (canary's upper bound minus baseline's lower bound, each a Gamma-Poisson confidence
  sequence at half the alpha: gamma_poisson.py's bounds, shared with gen_guard_reference.py), and for an oracle that knows the
  baseline's rate (the most any test could do: a likelihood ratio against the nearest null
  point), so the note can say how far the rule is from what the data allow.

Run:  python3 tests/stats/gen_margin_reference.py   (needs numpy and scipy; a venv under
~/.cache/tollgate works: python3 -m venv ~/.cache/tollgate/venv-stats && .../pip install numpy scipy)
"""
import json
import math
import os

import numpy as np
from scipy import integrate
from scipy.optimize import brentq, minimize_scalar
from scipy.special import gammaln

from gamma_poisson import bounds

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "margin_reference.json")
PRIOR_RATE = 100.0


def pois_ll(x, n, lam):
    """x ln(lam) - lam n (the terms that do not cancel), with 0 ln 0 = 0."""
    if x > 0:
        if lam <= 0:
            return -math.inf
        return x * math.log(lam) - lam * n
    return -lam * n


HISTORY_WEIGHT = 0.75
HISTORY_EVENTS_CAP = 50.0


def log_marginal_numeric(t, n, shape, rate):
    """log of the integral of exp(t ln l - l n) against a Gamma(shape, rate) density, by
    quadrature around the integrand's peak."""
    log_dens = lambda l: shape * math.log(rate) - gammaln(shape) + (shape - 1) * math.log(l) - rate * l
    g = lambda l: pois_ll(t, n, l) + log_dens(l)
    peak = max((t + shape - 1) / (n + rate), 1e-9)
    shift = g(peak)
    f = lambda l: math.exp(g(l) - shift) if l > 0 else (math.exp(-shift) * rate if (t == 0 and shape == 1) else 0.0)
    hi = peak + 60.0 * math.sqrt(t + shape) / (n + rate) + 60.0 / (n + rate)
    val, _ = integrate.quad(f, 0.0, hi, points=[peak], limit=800, epsabs=0, epsrel=1e-12)
    return math.log(val) + shift


def log_alt_numeric(c, nc, b, nb, history=None):
    t, n = c + b, nc + nb
    default = log_marginal_numeric(t, n, 1.0, PRIOR_RATE)
    if history is None:
        return default
    he, hr = history
    scale = min(HISTORY_EVENTS_CAP / max(he, 1.0), 1.0)
    fitted = log_marginal_numeric(t, n, 1.0 + scale * he, scale * hr)
    return float(np.logaddexp(math.log(HISTORY_WEIGHT) + fitted, math.log(1 - HISTORY_WEIGHT) + default))


def log_null_numeric(c, nc, b, nb, m):
    if c / nc - b / nb >= m:
        return pois_ll(c, nc, c / nc) + pois_ll(b, nb, b / nb)
    lo = max(0.0, -m)
    g = lambda lb: -(pois_ll(c, nc, lb + m) + pois_ll(b, nb, lb))
    hi = max(1.0, (c + b) / min(nc, nb) + abs(m)) + 1.0
    r = minimize_scalar(g, bounds=(lo, hi), method="bounded", options={"xatol": 1e-14, "maxiter": 2000})
    best = -r.fun
    # the bounded minimiser never evaluates the end point itself
    return max(best, -g(lo) if math.isfinite(g(lo)) else -math.inf)


def log_e(c, nc, b, nb, m, phi=1.0, history=None):
    if c / nc - b / nb >= m:
        return 0.0
    return max(0.0, log_alt_numeric(c, nc, b, nb, history) - log_null_numeric(c, nc, b, nb, m)) / phi


def upper(c, nc, b, nb, phi, alpha, history=None):
    cut = math.log(1.0 / alpha)
    f = lambda m: log_e(c, nc, b, nb, m, phi, history) - cut
    est = c / nc - b / nb
    if f(1.0) < 0:
        return 1.0
    return brentq(f, est + 1e-12, 1.0, xtol=1e-13, rtol=1e-11)


def cases():
    out = []
    for c, nc, b, nb, phi, alpha, margin, history in [
        (0, 600, 0, 600, 1.0, 0.025, 0.005, None),
        (0, 3000, 0, 3000, 1.0, 0.025, 0.005, None),
        (3, 3000, 2, 3000, 1.0, 0.025, 0.005, None),
        (30, 3000, 30, 3000, 1.0, 0.025, 0.005, None),
        (90, 9000, 85, 9000, 1.0, 0.025, 0.005, None),
        (90, 9000, 85, 9000, 1.6, 0.025, 0.005, None),
        (9, 9000, 10, 9000, 1.0, 0.025, 0.005, None),
        (200, 10000, 150, 10000, 1.0, 0.0125, 0.005, None),
        (5, 1500, 12, 3000, 1.0, 0.025, 0.002, None),
        (40, 900, 45, 900, 1.0, 0.05, 0.02, None),
        (60, 12000, 58, 12000, 1.0, 0.025, 0.005, None),
        (1, 6000, 0, 6000, 1.3, 0.025, 0.002, None),
        (90, 9000, 85, 9000, 1.0, 0.025, 0.005, (720, 72000)),
        (90, 9000, 85, 9000, 1.0, 0.025, 0.005, (0, 72000)),
        (0, 3000, 0, 3000, 1.0, 0.025, 0.005, (0, 36000)),
        (3, 3000, 4, 3000, 1.0, 0.025, 0.005, (30, 36000)),
        (60, 6000, 62, 6000, 1.2, 0.025, 0.005, (20, 1000)),
    ]:
        e = log_e(c, nc, b, nb, margin, phi, history)
        u = upper(c, nc, b, nb, phi, alpha, history)
        out.append({"canaryEvents": c, "canaryRequests": nc, "baselineEvents": b, "baselineRequests": nb,
                    "history": list(history) if history else None,
                    "phi": phi, "alpha": alpha, "margin": margin, "logE": e, "upper": u,
                    "passes": u < margin})
    return out


# the simulation uses the closed forms (fast); the cases above check them against the numeric ones
def log_gp(t, n, a, b):
    return a * math.log(b) - gammaln(a) + gammaln(a + t) - (a + t) * math.log(b + n)


def log_e_fast(c, nc, b, nb, m, history=None):
    if c / nc - b / nb >= m:
        return 0.0
    t, n = c + b, nc + nb
    alt = log_gp(t, n, 1.0, PRIOR_RATE)
    if history is not None:
        he, hr = history
        scale = min(HISTORY_EVENTS_CAP / max(he, 1.0), 1.0)
        alt = float(np.logaddexp(math.log(HISTORY_WEIGHT) + log_gp(t, n, 1 + scale * he, scale * hr),
                                 math.log(1 - HISTORY_WEIGHT) + alt))
    q = n * m - c - b
    lb = max(0.0, -m, (-q + math.sqrt(max(0.0, q * q + 4 * n * b * m))) / (2 * n))
    return max(0.0, alt - pois_ll(c, nc, lb + m) - pois_ll(b, nb, lb))


def simulate(p_b, p_c, alpha, runs, seed, margin=0.005, rps=10, window=30, looks=120, min_looks=3):
    """Minutes to pass per run (None: not within `looks`) for the joint test (without and with
    an hour of baseline history for its prior), the two-bound form and the oracle."""
    rng = np.random.default_rng(seed)
    n = rps * window
    res = {"joint": [], "jointWithHistory": [], "twoBounds": [], "oracle": []}
    # for a regression only the joint test's validity is asked (the other two are for speed)
    regression = p_c - p_b >= margin - 1e-12
    for _ in range(runs):
        # an hour of the stable track's traffic before the analysis (both arms' worth)
        history = (int(rng.binomial(2 * n * 120, p_b)), 2 * n * 120)
        cw = rng.binomial(n, p_c, looks)
        bw = rng.binomial(n, p_b, looks)
        done = {}
        c = b = 0
        for i in range(looks):
            c += int(cw[i])
            b += int(bw[i])
            if i + 1 < min_looks:
                continue
            nn = n * (i + 1)
            t = (i + 1) * window / 60
            if "joint" not in done and log_e_fast(c, nn, b, nn, margin) >= math.log(1 / alpha):
                done["joint"] = t
            if "jointWithHistory" not in done and log_e_fast(c, nn, b, nn, margin, history) >= math.log(1 / alpha):
                done["jointWithHistory"] = t
            if "twoBounds" not in done and regression:
                done["twoBounds"] = None
            if "twoBounds" not in done:
                _, cu = bounds(c, nn, 1.0, alpha / 2, PRIOR_RATE)
                bl, _ = bounds(b, nn, 1.0, alpha / 2, PRIOR_RATE)
                if cu - bl < margin:
                    done["twoBounds"] = t
            if "oracle" not in done and regression:
                done["oracle"] = None
            if "oracle" not in done and p_b > margin / 2:
                # likelihood ratio of (p_b, p_b) against the nearest null point (p_b - m/2, p_b + m/2)
                lc, lb = p_b + margin / 2, p_b - margin / 2
                o = pois_ll(c, nn, p_b) - pois_ll(c, nn, lc) + pois_ll(b, nn, p_b) - pois_ll(b, nn, lb)
                if o >= math.log(1 / alpha):
                    done["oracle"] = t
            if len(done) == 4:
                break
        for k in res:
            res[k].append(done.get(k))
    out = {}
    for k, v in res.items():
        if k == "oracle" and p_b <= margin / 2 or regression and k in ("twoBounds", "oracle"):
            continue
        mins = np.array([x if x is not None else math.inf for x in v])
        passed = np.isfinite(mins)
        out[k] = {
            "passed": float(passed.mean()),
            "within5min": float((mins <= 5).mean()),
            "within15min": float((mins <= 15).mean()),
            "medianMin": float(np.median(mins)) if passed.mean() >= 0.5 else None,
            "p90Min": float(np.percentile(mins, 90)) if passed.mean() >= 0.9 else None,
        }
    return out


def main():
    sims = []
    for p_b, p_c, alpha, runs, seed in [
        (0.01, 0.01, 0.025, 400, 1),
        (0.001, 0.001, 0.025, 400, 2),
        (0.0, 0.0, 0.025, 200, 3),
        (0.01, 0.015, 0.025, 1000, 4),
        (0.01, 0.02, 0.025, 400, 5),
        (0.001, 0.01, 0.025, 400, 6),
    ]:
        sims.append({"baselineRate": p_b, "canaryRate": p_c, "alpha": alpha, "runs": runs, "seed": seed,
                     "requestsPerSecond": 10, "lookSeconds": 30, "looks": 120,
                     "results": simulate(p_b, p_c, alpha, runs, seed)})
        print(sims[-1])
    ref = {
        "generator": "tests/stats/gen_margin_reference.py",
        "scipy": __import__("scipy").__version__,
        "numpy": np.__version__,
        "cases": cases(),
        "simulations": sims,
    }
    with open(OUT, "w") as f:
        json.dump(ref, f, indent=1)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
