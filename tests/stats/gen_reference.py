#!/usr/bin/env python3
"""Reference values for tollgate's statistics, written to reference.json beside this script.

Fixed-horizon tests come from scipy. The sequential e-values, the bounds dual to them and the
dispersion factor come from an independent implementation below (numpy + scipy.stats.binom),
written from the formulas in src/analysis/stats/sequential.rs' documentation, not from the Rust
code: the `confseq` package does not build here and `expectation` is not on the index.

Run:  python3 tests/stats/gen_reference.py   (needs numpy and scipy)
"""
import json
import math
import os

import numpy as np
from scipy import stats
from scipy.special import logsumexp

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.json")
rng = np.random.default_rng(20261122)


# ---------------------------------------------------------------- fixed-horizon tests
def fixed_cases():
    tables = [
        (3, 297, 9, 291),
        (10, 990, 25, 975),
        (0, 50, 4, 46),
        (1, 49, 1, 49),
        (12, 5, 3, 15),
        (200, 19800, 260, 19740),
        (7, 3, 2, 8),
        (0, 100, 0, 100),
    ]
    out = []
    for a, b, c, d in tables:
        case = {"table": [a, b, c, d]}
        odds, p = stats.fisher_exact([[a, b], [c, d]])
        case["fisherOdds"] = None if not np.isfinite(odds) else float(odds)
        case["fisherP"] = float(p)
        if min(a + b, c + d, a + c, b + d) > 0:
            res = stats.chi2_contingency([[a, b], [c, d]])
            case["chi2"] = float(res.statistic)
            case["chi2P"] = float(res.pvalue)
        # two-proportion pooled z: x1 = a of n1 = a+b, x2 = c of n2 = c+d
        n1, n2 = a + b, c + d
        pp = (a + c) / (n1 + n2)
        if 0 < pp < 1:
            z = (a / n1 - c / n2) / math.sqrt(pp * (1 - pp) * (1 / n1 + 1 / n2))
            case["z"] = z
            case["zP"] = float(2 * stats.norm.sf(abs(z)))
        out.append(case)
    return out


def mw_cases():
    out = []
    specs = [
        ("lognormal", 30, 25, False),
        ("lognormal-shifted", 40, 40, False),
        ("ties", 20, 30, True),
        ("small", 5, 7, False),
    ]
    for name, n1, n2, ties in specs:
        x = rng.lognormal(0.0, 0.5, n1)
        y = rng.lognormal(0.2 if "shifted" in name else 0.0, 0.5, n2)
        if ties:
            x = np.round(x, 1)
            y = np.round(y, 1)
        res = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
        out.append({"name": name, "x": x.tolist(), "y": y.tolist(), "u": float(res.statistic), "p": float(res.pvalue)})
    return out


def order_stat_cases():
    out = []
    for n, q, alpha in [(100, 0.5, 0.05), (1000, 0.99, 0.05), (37, 0.9, 0.1), (5000, 0.999, 0.025), (10, 0.5, 0.05)]:
        l = int(stats.binom.ppf(alpha / 2, n, q))
        u = int(stats.binom.ppf(1 - alpha / 2, n, q)) + 1
        out.append({"n": n, "q": q, "alpha": alpha, "l": l, "u": u})
    return out


# ---------------------------------------------------------------- sequential tests
def make_grid(lo, hi, step, extra):
    n = max(int(round((hi - lo) / step)), 1)
    pts = [lo + (hi - lo) * i / n for i in range(n + 1)] + [e for e in extra if math.isfinite(e)]
    pts = sorted(pts)
    out = []
    for p in pts:
        if not out or abs(p - out[-1]) >= 1e-12:
            out.append(p)
    return np.array(out)


def half_normal_weights(grid, c_idx, tau, upper):
    idx = np.arange(c_idx + 1, len(grid)) if upper else np.arange(0, c_idx)
    lw = -0.5 * ((grid[idx] - grid[c_idx]) / tau) ** 2
    return idx, lw - logsumexp(lw)


def log_e(grid, ll, j, tau, phi, upper):
    """Log e-value of the one-sided mixture SPRT with null grid[j] (alternatives above it when
    `upper`, below it otherwise)."""
    if (upper and j + 1 >= len(grid)) or (not upper and j == 0):
        return 0.0
    idx, lw = half_normal_weights(grid, j, tau, upper)
    return float(logsumexp(lw + (ll[idx] - ll[j]) / phi))


def dual_bounds(grid, ll, tau, phi, alpha_fail, alpha_pass):
    """Bounds dual to the two test families, by a full scan (the Rust code bisects from the
    decision points): the largest null the fail family rejects, the smallest the pass family
    rejects; infinite where none is rejected."""
    fail = [j for j in range(len(grid)) if log_e(grid, ll, j, tau, phi, True) >= math.log(1 / alpha_fail)]
    pas = [j for j in range(len(grid)) if log_e(grid, ll, j, tau, phi, False) >= math.log(1 / alpha_pass)]
    lower = grid[max(fail)] if fail else -math.inf
    upper = grid[min(pas)] if pas else math.inf
    return lower, upper


def ratio_stream(windows, fail_ratio, pass_ratio, tau, alpha, disp, alpha_pass, keep=1.0):
    """windows: list of (c, b, rc, rb). Returns the per-window log e-values, bounds, phi.

    The dispersion tempering the ratio comes from the canary's share of each window's events
    only (one conditional term per window, one degree of freedom), and every sum is multiplied
    by `keep` before a window is added (forgetting)."""
    grid = make_grid(-3.0, 3.0, 0.05, [math.log(fail_ratio), math.log(pass_ratio)])
    ll = np.zeros(len(grid))
    fi = int(np.argmax(grid >= math.log(fail_ratio) - 1e-12))
    pi = int(np.nonzero(grid <= math.log(pass_ratio) + 1e-12)[0][-1])
    C = B = RC = RB = 0.0
    resid2 = var = var_g = dof = 0.0
    terms = 0.0
    seen = 0
    out = []
    for c, b, rc, rb in windows:
        n = c + b
        if terms > 0:
            resid2 *= keep; var *= keep; var_g *= keep; dof *= keep; terms *= keep
        if n > 0:
            if seen > 0:
                # prediction from the earlier windows' rates alone
                th = ((C + 0.5) / RC) / ((B + 0.5) / RB)
                p = rc * th / (rc * th + rb)
                v = n * p * (1 - p) * (1 + n / (C + B + 1.0))
                resid2 += (c - n * p) ** 2
                var += v
                # burst sensitivity of the canary's share: g = 2 p (1-p) (n-1)
                var_g += v * 2 * p * (1 - p) * max(n - 1, 0)
                terms += 1
                dof += 1
        if n > 0:
            ps = rc * np.exp(grid) / (rc * np.exp(grid) + rb)
            ll = ll + stats.binom.logpmf(int(c), int(n), ps)
        C += c; B += b; RC += rc; RB += rb
        seen += 1
        # dispersion: prior burst variance kappa -> phi0 = 1 + kappa * (variance-weighted mean g)
        if disp is None or terms == 0 or var <= 0:
            phi = 1.0
        else:
            k, kappa, zup = disp
            phi0 = 1 + kappa * var_g / var
            vbar = var / terms
            est = (resid2 + k * phi0 * vbar) / (var + k * vbar)
            phi = 1 + max(est - 1, 0) * (1 + zup * math.sqrt(2 / (dof + k)))
        idx, lw = half_normal_weights(grid, fi, tau, True)
        le_fail = float(logsumexp(lw + (ll[idx] - ll[fi]) / phi))
        idx, lw = half_normal_weights(grid, pi, tau, False)
        le_pass = float(logsumexp(lw + (ll[idx] - ll[pi]) / phi))
        lower, upper = dual_bounds(grid, ll, tau, phi, alpha, alpha_pass)
        out.append({
            "logEFail": le_fail,
            "logEPass": le_pass,
            "lower": None if not math.isfinite(lower) else math.exp(lower),
            "upper": None if not math.isfinite(upper) else math.exp(upper),
            "phi": phi,
        })
    return out


# The pass tests' alpha in every sequential case: not the fail alpha, so a swap would show.
ALPHA_PASS = 0.04


def ratio_cases():
    cases = []
    specs = [
        # name, windows generator, fail, pass, tau, alpha, dispersion
        ("aa-steady", [(3, 2, 300, 300), (1, 4, 310, 290), (2, 2, 305, 295), (5, 3, 300, 300), (0, 1, 280, 320)], 1.0, 1.5, 1.0, 0.05, None),
        ("regression-x3", [(9, 3, 300, 300), (8, 2, 300, 300), (10, 4, 300, 300), (7, 3, 300, 300)], 1.0, 1.5, 1.0, 0.0125, None),
        ("uneven-split", [(2, 10, 50, 450), (3, 9, 100, 400), (6, 8, 150, 350), (12, 7, 250, 250)], 1.1, 2.0, 0.7, 0.05, None),
        ("zero-windows", [(0, 0, 30, 30), (1, 0, 30, 30), (0, 0, 30, 30), (0, 2, 30, 30)], 1.0, 1.5, 1.0, 0.05, None),
        ("bursty-tempered", [(40, 15, 3000, 3000), (12, 35, 3000, 3000), (30, 28, 3000, 3000), (55, 20, 3000, 3000), (18, 33, 3000, 3000)], 1.0, 1.5, 1.0, 0.05, (4.0, 0.05, 1.5)),
        # steady high counts: the residuals look Poisson, the prior burst variance still tempers
        ("steady-high-count-prior", [(60, 30, 3000, 3000), (52, 37, 2950, 3050), (67, 26, 3010, 2990), (55, 34, 3000, 3000), (63, 29, 3000, 3000)], 1.0, 1.5, 0.45, 0.012, (2.0, 0.04, 7.0)),
    ]
    for name, wins, f, p, tau, alpha, disp in specs:
        cases.append({
            "name": name, "windows": [list(map(float, w)) for w in wins], "failRatio": f, "passRatio": p,
            "tau": tau, "alpha": alpha, "alphaPass": ALPHA_PASS, "dispersion": list(disp) if disp else None,
            "expected": ratio_stream(wins, f, p, tau, alpha, disp, ALPHA_PASS),
        })
    # a longer random stream
    wins = []
    for _ in range(40):
        rc, rb = int(rng.poisson(300)), int(rng.poisson(300))
        wins.append((int(rng.binomial(rc, 0.015)), int(rng.binomial(rb, 0.01)), rc, rb))
    cases.append({
        "name": "random-x1.5", "windows": [list(map(float, w)) for w in wins], "failRatio": 1.0, "passRatio": 1.5,
        "tau": 1.0, "alpha": 0.025, "alphaPass": ALPHA_PASS, "dispersion": [4.0, 0.05, 1.5],
        "expected": ratio_stream(wins, 1.0, 1.5, 1.0, 0.025, (4.0, 0.05, 1.5), ALPHA_PASS),
    })
    # forgetting: a shock of five times the errors in both arms for three windows, then a
    # burst in the canary alone, with the default memory (60 windows) and a short one (10)
    # (their own generator, so the other cases' data stay as they were)
    own_rng = np.random.default_rng(20261207)
    for name, keep in (("shocks-forget-60", 1 - 1 / 60), ("shocks-forget-10", 0.9)):
        wins = []
        for t in range(30):
            rc, rb = int(own_rng.poisson(3000)), int(own_rng.poisson(3000))
            shared = 5.0 if 5 <= t < 8 else 1.0
            own = 4.0 if 15 <= t < 17 else 1.0
            wins.append((int(own_rng.binomial(rc, 0.01 * shared * own)), int(own_rng.binomial(rb, 0.01 * shared)), rc, rb))
        cases.append({
            "name": name, "windows": [list(map(float, w)) for w in wins], "failRatio": 1.0, "passRatio": 1.5,
            "tau": 0.45, "alpha": 0.012, "alphaPass": ALPHA_PASS, "dispersion": [2.0, 0.04, 7.0], "keep": keep,
            "expected": ratio_stream(wins, 1.0, 1.5, 0.45, 0.012, (2.0, 0.04, 7.0), ALPHA_PASS, keep),
        })
    return cases


def shift_stream(canary, baseline, fail, pas, tau, alpha, alpha_pass):
    grid = make_grid(-3.0, 3.0, 0.1, [fail, pas])
    ll = np.zeros(len(grid))
    ref = None
    fi = int(np.argmax(grid >= fail - 1e-12))
    pi = int(np.nonzero(grid <= pas + 1e-12)[0][-1])
    out = []
    for c, b in zip(canary, baseline):
        c = np.array(c, float); b = np.array(b, float)
        rc, rb = c.sum(), b.sum()
        if ref is None:
            ref = np.zeros(len(b))
        if ref.sum() > 0:
            rr = ref + 0.5
            tot = rr.sum()
            below = np.concatenate([[0.0], np.cumsum(rr)[:-1]])
            z = 2 * (below + 0.5 * rr) / tot - 1
            for k, beta in enumerate(grid):
                p = 1 / (1 + np.exp(-(math.log(rc / rb) + beta * z)))
                m = (c + b) > 0
                ll[k] += float(np.sum(stats.binom.logpmf(c[m].astype(int), (c[m] + b[m]).astype(int), p[m])))
        ref = ref + b
        idx, lw = half_normal_weights(grid, fi, tau, True)
        le_fail = float(logsumexp(lw + ll[idx] - ll[fi]))
        idx, lw = half_normal_weights(grid, pi, tau, False)
        le_pass = float(logsumexp(lw + ll[idx] - ll[pi]))
        lower, upper = dual_bounds(grid, ll, tau, 1.0, alpha, alpha_pass)
        out.append({"logEFail": le_fail, "logEPass": le_pass, "estimate": float(grid[int(np.argmax(ll))]),
                    "lower": None if not math.isfinite(lower) else float(lower),
                    "upper": None if not math.isfinite(upper) else float(upper)})
    return out


def shift_cases():
    probs_b = np.array([0.05, 0.2, 0.35, 0.25, 0.1, 0.05])
    probs_c = np.array([0.03, 0.15, 0.33, 0.28, 0.13, 0.08])
    out = []
    for name, pc in [("aa", probs_b), ("slower", probs_c)]:
        can, base = [], []
        for _ in range(8):
            can.append(rng.multinomial(400, pc).tolist())
            base.append(rng.multinomial(400, probs_b).tolist())
        out.append({"name": name, "canary": can, "baseline": base, "fail": 0.0, "pass": 0.3, "tau": 1.0,
                    "alpha": 0.05, "alphaPass": ALPHA_PASS,
                    "expected": shift_stream(can, base, 0.0, 0.3, 1.0, 0.05, ALPHA_PASS)})
    return out


# ---------------------------------------------------------------- Poisson rate bounds
def rate_bounds(events, exposure, phi, alpha, a=1.0, b=100.0):
    """Robbins' Gamma(a, b)-Poisson mixture confidence sequence for a rate per request, from
    the formula in src/analysis/stats/rate.rs' documentation: {l : log M(l) / phi < log(1/alpha)}
    with log M(l) = a ln b - lnG(a) + lnG(a+X) - (a+X) ln(b+N) - X ln l + l N; upper bound
    capped at 1, lower bound 0 without events."""
    from scipy.optimize import brentq
    from scipy.special import gammaln

    cut = phi * math.log(1.0 / alpha)

    def f(lam):
        xl = events * math.log(lam) if events > 0 else 0.0
        return (a * math.log(b) - gammaln(a) + gammaln(a + events) - (a + events) * math.log(b + exposure)
                - xl + lam * exposure - cut)

    mle = events / exposure
    upper = 1.0 if f(1.0) < 0 else brentq(f, max(mle, 1e-300), 1.0, xtol=1e-15, rtol=1e-13)
    lower = 0.0 if events == 0 else brentq(f, 1e-300, mle, xtol=1e-300, rtol=1e-13)
    return lower, upper


def rate_cases():
    out = []
    for events, exposure, phi, alpha in [(0, 1500, 1.0, 0.0075), (0, 300, 1.0, 0.05), (3, 3000, 1.0, 0.0075),
                                         (30, 3000, 1.0, 0.0075), (90, 9000, 1.7, 0.0075),
                                         (1000, 100000, 1.0, 0.01), (5, 10, 1.0, 0.05)]:
        lo, hi = rate_bounds(events, exposure, phi, alpha)
        out.append({"events": events, "exposure": exposure, "phi": phi, "alpha": alpha, "lower": lo, "upper": hi})
    return out


def main():
    ref = {
        "generator": "tests/stats/gen_reference.py",
        "scipy": stats.__name__ and __import__("scipy").__version__,
        "numpy": np.__version__,
        "fixed": fixed_cases(),
        "mannWhitney": mw_cases(),
        "orderStatistics": order_stat_cases(),
        "ratio": ratio_cases(),
        "shift": shift_cases(),
        "rate": rate_cases(),
    }
    with open(OUT, "w") as f:
        json.dump(ref, f, indent=1)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
