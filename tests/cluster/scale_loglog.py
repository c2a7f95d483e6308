#!/usr/bin/env python3
"""How the scale bench's cost grows with N, both controllers, as a log-log SVG (issue 20).

Reads the scale bench's JSON files (tests/cluster/scale-bench.sh: {"tollgate": {...}, "argo":
{...}}, each with config.rollouts = N and phases startup / steady / single / churn) and draws two
panels against N (Rollouts), both axes logarithmic:

  memory  steady-state RSS mean (solid) and the whole run's peak, VmHWM (dashed), MiB
  CPU     CPU seconds over the whole run: startup + steady + single + churn (solid), and the
          steady window's CPU seconds per minute (dashed; a zero is drawn at the axis floor)

One point per (controller, N); when several files hold the same N the last one by name wins.
Standard library only (no matplotlib).

Usage: scale_loglog.py OUT.svg FILE.json...
"""
import json
import math
import sys

COLORS = {"tollgate": "#1f77b4", "argo": "#d62728"}
NAMES = {"tollgate": "tollgate", "argo": "Argo Rollouts"}
W, H = 460, 340  # one panel
ML, MR, MT, MB = 64, 16, 40, 52  # margins


def points(files):
    """{controller: {N: figures}} from the bench's JSON files."""
    out = {}
    for path in sorted(files):
        data = json.load(open(path))
        for c in ("tollgate", "argo"):
            r = data.get(c)
            if not r or "config" not in r:
                continue
            ph = r["phases"]
            n = r["config"]["rollouts"]
            need = ("startup", "steady", "single", "churn")
            if not all(p in ph for p in need):
                continue
            steady = ph["steady"]
            out.setdefault(c, {})[n] = {
                "rss_steady": steady.get("rss_mib_mean"),
                "rss_peak": max(ph[p].get("vmhwm_mib") or 0 for p in need),
                "cpu_total": sum(ph[p].get("cpu_seconds") or 0 for p in need),
                "cpu_steady_per_min": (steady.get("cpu_seconds") or 0) / max(steady.get("seconds") or 1, 1) * 60,
                "load": (r.get("machine") or {}).get("load_average"),
                "file": path,
            }
    return out


def decades(lo, hi):
    """Axis bounds on 1-2-5 steps around [lo, hi] and the tick values."""
    steps = []
    for e in range(-3, 7):
        for m in (1, 2, 5):
            steps.append(m * 10 ** e)
    a = max(s for s in steps if s <= lo) if lo >= steps[0] else steps[0]
    b = min(s for s in steps if s >= hi) if hi <= steps[-1] else steps[-1]
    if a == b:
        b = next(s for s in steps if s > a)
    return a, b, [s for s in steps if a <= s <= b]


def fmt(v):
    return f"{v:g}" if v < 1e4 else f"{v:.0e}"


def panel(x0, title, ylabel, series, ns):
    """One log-log panel at horizontal offset x0; series: [(controller, dashed, {N: y})]."""
    ys = [y for _, _, d in series for y in d.values() if y and y > 0]
    if not ys or not ns:
        return [f'<text x="{x0 + W / 2}" y="{H / 2}" text-anchor="middle">no data</text>']
    xa, xb, xt = decades(min(ns), max(ns))
    ya, yb, yt = decades(min(ys), max(ys))
    pw, ph = W - ML - MR, H - MT - MB

    def px(n):
        return x0 + ML + (math.log10(n) - math.log10(xa)) / (math.log10(xb) - math.log10(xa)) * pw

    def py(y):
        y = max(y, ya)  # a zero sits on the floor
        return MT + ph - (math.log10(y) - math.log10(ya)) / (math.log10(yb) - math.log10(ya)) * ph

    s = [f'<text x="{x0 + W / 2}" y="20" text-anchor="middle" font-weight="bold">{title}</text>',
         f'<rect x="{x0 + ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>']
    for t in xt:
        s.append(f'<line x1="{px(t):.1f}" y1="{MT}" x2="{px(t):.1f}" y2="{MT + ph}" stroke="#eee"/>')
        s.append(f'<text x="{px(t):.1f}" y="{MT + ph + 16}" text-anchor="middle">{fmt(t)}</text>')
    for t in yt:
        s.append(f'<line x1="{x0 + ML}" y1="{py(t):.1f}" x2="{x0 + ML + pw}" y2="{py(t):.1f}" stroke="#eee"/>')
        s.append(f'<text x="{x0 + ML - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{fmt(t)}</text>')
    s.append(f'<text x="{x0 + ML + pw / 2}" y="{H - 12}" text-anchor="middle">N (Rollouts, log scale)</text>')
    s.append(f'<text transform="translate({x0 + 16},{MT + ph / 2}) rotate(-90)" text-anchor="middle">{ylabel}</text>')
    for c, dashed, d in series:
        pts = sorted((n, y) for n, y in d.items() if y is not None)
        if not pts:
            continue
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        path = " ".join(f"{px(n):.1f},{py(y):.1f}" for n, y in pts)
        s.append(f'<polyline points="{path}" fill="none" stroke="{COLORS[c]}" stroke-width="2"{dash}/>')
        for n, y in pts:
            fill = COLORS[c] if y > 0 else "white"  # hollow: a zero, drawn on the axis floor
            s.append(f'<circle cx="{px(n):.1f}" cy="{py(y):.1f}" r="3.5" fill="{fill}" stroke="{COLORS[c]}">'
                     f'<title>{NAMES[c]} N={n}: {y:.3g}</title></circle>')
    return s


def svg(pts):
    ns = sorted({n for d in pts.values() for n in d})
    mem = [(c, dashed, {n: f[k] for n, f in pts[c].items()}) for c in pts for dashed, k in ((False, "rss_steady"), (True, "rss_peak"))]
    cpu = [(c, dashed, {n: f[k] for n, f in pts[c].items()}) for c in pts for dashed, k in ((False, "cpu_total"), (True, "cpu_steady_per_min"))]
    body = panel(0, "Memory vs N", "RSS (MiB, log scale)", mem, ns)
    body += panel(W, "CPU vs N", "CPU seconds (log scale)", cpu, ns)
    ly = H + 8
    legend = []
    for i, c in enumerate(c for c in ("tollgate", "argo") if c in pts):
        x = 20 + i * 200
        legend.append(f'<line x1="{x}" y1="{ly}" x2="{x + 24}" y2="{ly}" stroke="{COLORS[c]}" stroke-width="3"/>'
                      f'<text x="{x + 30}" y="{ly + 4}">{NAMES[c]}</text>')
    legend.append(f'<text x="20" y="{ly + 22}">memory: solid = steady RSS mean, dashed = peak (VmHWM). CPU: solid = CPU s over the '
                  'whole run (startup+steady+single+churn),</text>')
    legend.append(f'<text x="20" y="{ly + 38}">dashed = steady CPU s per minute; a hollow point is a zero, drawn on the axis floor. '
                  'Scale bench (tests/cluster/scale-bench.sh),</text>')
    legend.append(f'<text x="20" y="{ly + 54}">2 cores; the machine was shared with other jobs: the load averages are in each JSON '
                  'and .txt.</text>')
    total_h = H + 72
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{total_h}" '
            f'viewBox="0 0 {2 * W} {total_h}" font-family="sans-serif" font-size="12">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body + legend) + "\n</svg>\n")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    pts = points(sys.argv[2:])
    if not pts:
        sys.exit("scale_loglog.py: no complete bench result in the given files")
    open(sys.argv[1], "w").write(svg(pts))
    for c, d in pts.items():
        for n, f in sorted(d.items()):
            print(f"{c:9} N={n:<6} RSS steady {f['rss_steady']} MiB, peak {f['rss_peak']} MiB, CPU {f['cpu_total']:.2f} s "
                  f"(steady {f['cpu_steady_per_min']:.3f} s/min)  load {f['load']}  [{f['file']}]")


if __name__ == "__main__":
    main()
