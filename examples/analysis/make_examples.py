#!/usr/bin/env python3
"""Writes the example inputs of `tollgate analyze` beside this script.

They have the shape of an export from Prometheus, one entry per 30 s look:
  requests  = increase(http_requests_total{track="canary"}[30s])
  errors    = increase(http_requests_total{track="canary",code=~"5.."}[30s])
  latency   = increase(http_request_duration_seconds_bucket{track="canary"}[30s]) by (le)
(and the same for track="baseline"). The traffic is seeded synthetic data: 40 req/s with a 25%
canary share, lognormal latency (median 80 ms, sigma 0.6), Prometheus' default buckets.
"""
import json
import os
from datetime import datetime, timedelta, timezone

import numpy as np
from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]


def arm(rng, rps, err, median, sigma):
    n = int(rng.poisson(rps * 30))
    lat = rng.lognormal(np.log(median), sigma, n)
    cum = [int((lat <= b).sum()) for b in BOUNDS] + [n]
    return {
        "requests": n,
        "errors": int(rng.binomial(n, err)),
        "latency": {"bounds": BOUNDS + ["+Inf"], "cumulative": cum},
    }


def make(name, windows, canary_err, canary_median, seed):
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
    out = {"policy": {"alpha": 0.05, "latency": [{"quantile": 0.99}]}, "windows": []}
    for i in range(windows):
        out["windows"].append({
            "start": (t0 + timedelta(seconds=30 * i)).isoformat().replace("+00:00", "Z"),
            "canaryShare": 0.25,
            "baseline": arm(rng, 30.0, 0.01, 0.08, 0.6),
            "canary": arm(rng, 10.0, canary_err, canary_median, 0.6),
        })
    lines = ",\n  ".join(json.dumps(w, separators=(",", ":")) for w in out["windows"])
    with open(os.path.join(HERE, name), "w") as f:
        f.write('{\n "policy": %s,\n "windows": [\n  %s\n ]\n}\n' % (json.dumps(out["policy"]), lines))


make("error-regression.json", 20, 0.03, 0.08, 1)
make("healthy.json", 120, 0.01, 0.08, 2)
