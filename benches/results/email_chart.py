"""Draws the limit over time of one examples/email_backlog run as an SVG.

    cargo run --release --example email_backlog -- --adaptive --limit 64 \
        --domains 1 --sink-capacity 12 --sink-latency 20 --count 6000 --trace trace.csv
    python3 benches/results/email_chart.py trace.csv 12 > benches/results/email_adaptive.svg

The trace is the example's `--trace` CSV (ms,limit,in_flight,sent,failed);
the second argument is the sink's capacity, drawn as a dashed line.

    python3 benches/results/email_chart.py --check trace.csv 12

checks instead that the limit converged near the capacity: its median over
the second half of the run in [0.8 C, 1.3 C] (the adaptive issue's range).
"""

import csv
import sys


def read(path):
    with open(path) as f:
        return [(int(r["ms"]), int(r["limit"]), int(r["in_flight"])) for r in csv.DictReader(f)]


def check(path, capacity):
    rows = read(path)
    end = rows[-1][0]
    late = sorted(limit for t, limit, _ in rows if t >= end / 2)
    if len(late) < 10:
        print(f"FAIL: {len(late)} trace lines in the second half, too few to judge")
        return False
    median = late[len(late) // 2]
    ok = 0.8 * capacity <= median <= 1.3 * capacity
    print(
        f"limit over the second half: median {median}, range [{late[0]}, {late[-1]}], "
        f"capacity {capacity}: {'ok' if ok else 'FAIL: not in [0.8 C, 1.3 C]'}"
    )
    return ok


def main():
    if sys.argv[1] == "--check":
        sys.exit(0 if check(sys.argv[2], int(sys.argv[3])) else 1)
    path, capacity = sys.argv[1], int(sys.argv[2])
    rows = read(path)
    w, h, pad = 720.0, 300.0, 48.0
    t_max = max(r[0] for r in rows) or 1
    l_max = max(capacity * 1.5, max(r[1] for r in rows) + 2)

    def x(t):
        return pad + (w - 2 * pad) * t / t_max

    def y(v):
        return h - pad - (h - 2 * pad) * v / l_max

    def steps(values):
        points, last = [], None
        for t, v in values:
            if last is not None:
                points.append(f"{x(t):.1f},{y(last):.1f}")
            points.append(f"{x(t):.1f},{y(v):.1f}")
            last = v
        return " ".join(points)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{pad}" y="20" font-size="14">email_backlog --adaptive against a server that '
        f"refuses a session above {capacity} (421)</text>",
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>',
    ]
    step = 5 if l_max <= 30 else 10
    for v in range(0, int(l_max) + 1, step):
        out.append(f'<text x="{pad - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>')
    seconds = t_max / 1000
    tick = 1 if seconds <= 10 else 2 if seconds <= 20 else 5
    s = 0
    while s * 1000 <= t_max:
        out.append(f'<text x="{x(s * 1000):.1f}" y="{h - pad + 18}" text-anchor="middle">{s} s</text>')
        s += tick
    out.append(
        f'<line x1="{pad}" y1="{y(capacity):.1f}" x2="{w - pad}" y2="{y(capacity):.1f}" '
        'stroke="#999" stroke-dasharray="6 4" stroke-width="2"/>'
    )
    out.append(
        f'<polyline fill="none" stroke="#ff7f0e" stroke-width="1" opacity="0.6" '
        f'points="{steps([(t, n) for t, _, n in rows])}"/>'
    )
    out.append(
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" '
        f'points="{steps([(t, l) for t, l, _ in rows])}"/>'
    )
    out.append(f'<text x="{x(t_max * 0.02):.1f}" y="40" fill="#1f77b4">limit</text>')
    out.append(f'<text x="{x(t_max * 0.12):.1f}" y="40" fill="#ff7f0e">in flight</text>')
    out.append(f'<text x="{x(t_max * 0.26):.1f}" y="40" fill="#777">server capacity</text>')
    out.append("</svg>")
    print("\n".join(out))


if __name__ == "__main__":
    main()
