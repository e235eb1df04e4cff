#!/usr/bin/env python3
"""Draw benches/results/peers.svg (and a Markdown table) from the JSON that
`cargo bench --bench peers` writes to target/bench/peers.json.

    python3 benches/results/chart.py [target/bench/peers.json] [benches/results/peers.svg]

Prints the Markdown table (median [min-max] and ratio to permits) on stdout.
Standard library only.
"""
import datetime
import json
import math
import sys
from xml.sax.saxutils import escape

COLORS = {
    "permits": "#d62728",
    "AtomicUsize": "#7f7f7f",
    "tokio": "#1f77b4",
    "async-lock": "#2ca02c",
    "maitake-sync": "#9467bd",
    "futures-intrusive": "#8c564b",
    "embassy-fair": "#e377c2",
    "embassy-greedy": "#bcbd22",
}


def fmt(v):
    if v == 0:
        return "0"
    if v < 0.01:
        return f"{v:.4f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell_text(row, cell, budget):
    st = cell["status"]
    if st == "fail":
        return "FAIL (" + cell.get("reason", "") + ")"
    if st == "timeout":
        return f">{budget:g} s budget"
    if st != "ok":
        return "-"
    med, lo, hi = cell["median"], cell["min"], cell["max"]
    text = fmt(med) if lo == hi else f"{fmt(med)} [{fmt(lo)}-{fmt(hi)}]"
    if cell.get("ratio") is not None:
        text += f" x{cell['ratio']:.2f}"
    return text


def markdown(data):
    impls = data["impls"]
    out = ["| workload | unit | " + " | ".join(impls) + " |",
           "|---|---|" + "---|" * len(impls)]
    for row in data["rows"]:
        cells = [cell_text(row, c, data["budget_seconds"]) for c in row["cells"]]
        out.append(f"| {row['id']} {row['label']} | {row['unit']} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def svg(data):
    impls = data["impls"]
    # Rows with a ratio for permits' peers: timed rows and the size rows.
    rows = [r for r in data["rows"]
            if any(c["status"] == "ok" and c.get("ratio") is not None for c in r["cells"][1:])]
    bar_h, gap, label_w, plot_w, top = 9, 10, 400, 520, 70
    lo_r, hi_r = 0.1, 100.0  # log axis range of ratios
    group_h = bar_h * len(impls) + gap
    height = top + group_h * len(rows) + 60
    width = label_w + plot_w + 200

    def x_of(ratio):
        ratio = min(max(ratio, lo_r), hi_r)
        return label_w + plot_w * (math.log10(ratio) - math.log10(lo_r)) / (math.log10(hi_r) - math.log10(lo_r))

    date = datetime.datetime.fromtimestamp(data["unix_time"], datetime.timezone.utc).strftime("%Y-%m-%d")
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="10" y="20" font-size="14" font-weight="bold">permits vs peers: median / permits\' median '
         f'(log scale; left of the red line = faster or smaller than permits)</text>',
         f'<text x="10" y="38">{escape(data["cpu"])}, {data["cores"]} cores, {date}'
         f'{" (quick mode)" if data["quick"] else ""}; bars: median ratio, whiskers: min-max</text>']
    for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100):
        x = x_of(t)
        s.append(f'<line x1="{x:.1f}" y1="{top - 8}" x2="{x:.1f}" y2="{top + group_h * len(rows)}" '
                 f'stroke="{"#d62728" if t == 1 else "#ddd"}" stroke-width="{1.5 if t == 1 else 1}"/>')
        s.append(f'<text x="{x:.1f}" y="{top - 12}" text-anchor="middle">{t:g}x</text>')
    for gi, row in enumerate(rows):
        y0 = top + gi * group_h
        label = f"{row['id']} {row['label']} ({row['unit']})"
        s.append(f'<text x="{label_w - 8}" y="{y0 + group_h / 2:.1f}" text-anchor="end">{escape(label)}</text>')
        base = row["cells"][0]
        for ii, cell in enumerate(row["cells"]):
            y = y0 + ii * bar_h
            color = COLORS.get(cell["impl"], "#000")
            if cell["status"] == "ok" and cell.get("ratio") is not None and base["status"] == "ok":
                r = cell["ratio"]
                x1 = x_of(1.0)
                x2 = x_of(r)
                s.append(f'<rect x="{min(x1, x2):.1f}" y="{y + 1}" width="{max(abs(x2 - x1), 1.5):.1f}" '
                         f'height="{bar_h - 2}" fill="{color}"/>')
                if base["median"] > 0:
                    a, b = x_of(cell["min"] / base["median"]), x_of(cell["max"] / base["median"])
                    s.append(f'<line x1="{a:.1f}" y1="{y + bar_h / 2}" x2="{b:.1f}" y2="{y + bar_h / 2}" '
                             f'stroke="black" stroke-width="0.7"/>')
            elif cell["status"] in ("fail", "timeout"):
                what = "FAIL" if cell["status"] == "fail" else "timeout"
                s.append(f'<text x="{x_of(hi_r) - 2:.1f}" y="{y + bar_h - 1}" text-anchor="end" '
                         f'fill="{color}" font-size="9">{what}</text>')
        s.append(f'<line x1="10" y1="{y0 + group_h - gap / 2:.1f}" x2="{width - 10}" '
                 f'y2="{y0 + group_h - gap / 2:.1f}" stroke="#eee"/>')
    lx = label_w + plot_w + 20
    for ii, name in enumerate(impls):
        y = top + ii * 16
        s.append(f'<rect x="{lx}" y="{y}" width="12" height="10" fill="{COLORS.get(name, "#000")}"/>')
        s.append(f'<text x="{lx + 16}" y="{y + 9}">{escape(name)}</text>')
    s.append("</svg>")
    return "\n".join(s) + "\n"


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "target/bench/peers.json"
    dst = sys.argv[2] if len(sys.argv) > 2 else "benches/results/peers.svg"
    with open(src) as f:
        data = json.load(f)
    with open(dst, "w") as f:
        f.write(svg(data))
    print(markdown(data))


if __name__ == "__main__":
    main()
