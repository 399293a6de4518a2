"""The Grafana dashboard of the metrics: writes its JSON, and draws its panels from real ``/metrics`` scrapes.

    .venv/bin/python -m bench.dashboard_render --write-dashboard docs/grafana-dashboard.json
    .venv/bin/python -m bench.dashboard_render --scrapes var/load-scrapes.jsonl --out docs/dashboard.png

The picture is not a Grafana screenshot: Grafana is not in Debian's archive and its images cannot be
fetched here. It is the same panels (``bench/dashboard_panels.py``: titles, queries, units) drawn by this
script as SVG and photographed by headless Chromium (``/usr/bin/chromium``; ``.ci/install-browser``
installs it). The queries are evaluated the way Prometheus would — ``rate()`` as the increase over a
window divided by its length, counter resets included; ``histogram_quantile()`` by linear interpolation
within the bucket — over the scrapes ``bench/load.py`` took, with windows shortened to
``--window`` seconds to fit a one-minute run.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.dashboard_panels import PANELS

Sample = dict[tuple[str, frozenset[tuple[str, str]]], float]
Series = dict[str, list[tuple[float, float]]]
COLOURS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#ff9830", "#96d98d"]
CHROMIUM = "/usr/bin/chromium"


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard (import it, pick the Prometheus data source that scrapes /metrics)."""
    panels = []
    for index, panel in enumerate(PANELS):
        panels.append(
            {
                "id": index + 1,
                "type": "timeseries",
                "title": panel["title"],
                "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"},
                "gridPos": {"h": 8, "w": 8, "x": (index % 3) * 8, "y": (index // 3) * 8},
                "fieldConfig": {"defaults": {"unit": panel["unit"]}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {"refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend}
                    for n, (legend, expr, _) in enumerate(panel["queries"])
                ],
            }
        )
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus"}],
        "title": "wemasy Sendcloud push",
        "uid": "wemasy-sendcloud",
        "tags": ["wemasy", "sendcloud"],
        "timezone": "utc",
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "schemaVersion": 39,
        "panels": panels,
    }


def load_scrapes(path: Path) -> list[tuple[float, Sample]]:
    scrapes = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        samples: Sample = {}
        for family in text_string_to_metric_families(entry["text"]):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        scrapes.append((entry["t"], samples))
    return scrapes


def legend_of(template: str, labels: dict[str, str]) -> str:
    text = template
    for key, value in labels.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def grouped(samples: Sample, name: str, by: tuple[str, ...]) -> dict[tuple[tuple[str, str], ...], float]:
    sums: dict[tuple[tuple[str, str], ...], float] = defaultdict(float)
    for (sample_name, labels), value in samples.items():
        if sample_name == name:
            label_map = dict(labels)
            sums[tuple((key, label_map.get(key, "")) for key in by)] += value
    return sums


def increase(scrapes: list[tuple[float, Sample]], i: int, j: int, name: str, by: tuple[str, ...]) -> dict[Any, float]:
    """Per group: how much the counters under ``name`` grew from scrape j to scrape i (resets counted)."""
    start, end = grouped(scrapes[j][1], name, by), grouped(scrapes[i][1], name, by)
    return {key: (value - start.get(key, 0.0)) if value >= start.get(key, 0.0) else value for key, value in end.items()}


def window_start(scrapes: list[tuple[float, Sample]], i: int, window: float) -> int:
    j = i
    while j > 0 and scrapes[i][0] - scrapes[j - 1][0] <= window + 0.5:
        j -= 1
    return j


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over (upper bound, cumulative count) pairs."""
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def evaluate(scrapes: list[tuple[float, Sample]], legend: str, how: tuple[Any, ...], window: float) -> Series:
    series: Series = defaultdict(list)
    t0 = scrapes[0][0]
    for i in range(1, len(scrapes)):
        t = scrapes[i][0] - t0
        j = window_start(scrapes, i, window)
        if how[0] == "gauge":
            for key, value in grouped(scrapes[i][1], how[1], how[2]).items():
                series[legend_of(legend, dict(key))].append((t, value))
        elif how[0] == "rate":
            if j == i:
                continue
            seconds = scrapes[i][0] - scrapes[j][0]
            for key, value in increase(scrapes, i, j, how[1], how[2]).items():
                series[legend_of(legend, dict(key))].append((t, value / seconds))
        else:  # quantile
            if j == i:
                continue
            _, q, histogram, by = how
            grown = increase(scrapes, i, j, f"{histogram}_bucket", (*by, "le"))
            per_group: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = defaultdict(list)
            for key, value in grown.items():
                labels = dict(key)
                per_group[tuple((k, labels[k]) for k in by)].append((float(labels["le"]), value))
            for group, buckets in per_group.items():
                value = quantile(q, buckets)
                if value is not None:
                    series[legend_of(legend, dict(group))].append((t, value))
    return series


def nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def fmt(value: float, unit: str) -> str:
    suffix = {"s": " s", "reqps": "/s", "ops": "/s"}.get(unit, "")
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k{suffix}"
    if abs(value) < 0.1:
        return f"{value:.3f}{suffix}"
    return f"{value:.3g}{suffix}"


def panel_svg(panel: dict[str, Any], series: Series, width: int, height: int, duration: float) -> str:
    left, right, top, plot_h = 62, 14, 34, height - 34 - 78
    plot_w = width - left - right
    top_value = nice_max(max((v for points in series.values() for _, v in points), default=0.0) * 1.05)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
        f'<rect width="{width}" height="{height}" rx="3" fill="#181b1f" stroke="#2c3235"/>',
        f'<text x="12" y="22" fill="#d8d9da" font-size="14" font-weight="600">{html.escape(panel["title"])}</text>',
    ]
    for n in range(5):
        y = top + plot_h - plot_h * n / 4
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#2c3235"/>')
        label = fmt(top_value * n / 4, panel["unit"])
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" fill="#8e8e8e" font-size="11" text-anchor="end">{label}</text>'
        )
    for n in range(7):
        x = left + plot_w * n / 6
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" fill="#8e8e8e" font-size="11" text-anchor="middle">'
            f"{duration * n / 6:.0f}s</text>"
        )
    if not series:
        out.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" fill="#8e8e8e" font-size="13" '
            'text-anchor="middle">No data</text>'
        )
    for index, (name, points) in enumerate(sorted(series.items())):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(
            f"{'M' if k == 0 else 'L'}{left + plot_w * t / duration:.1f},{top + plot_h - plot_h * v / top_value:.1f}"
            for k, (t, v) in enumerate(points)
        )
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        if index < 6:
            x, y = 12 + (index % 2) * (width // 2), top + plot_h + 34 + (index // 2) * 16
            out.append(f'<rect x="{x}" y="{y - 8}" width="12" height="3" fill="{colour}"/>')
            out.append(f'<text x="{x + 18}" y="{y - 3}" fill="#ccccdc" font-size="11">{html.escape(name[:48])}</text>')
    out.append("</svg>")
    return "".join(out)


def render(scrapes_path: Path, out: Path, window: float, caption: str) -> None:
    scrapes = load_scrapes(scrapes_path)
    duration = max(1.0, scrapes[-1][0] - scrapes[0][0])
    width, height = 520, 300
    cells = []
    for panel in PANELS:
        series: Series = {}
        for legend, _, how in panel["queries"]:
            series.update(evaluate(scrapes, legend, how, window))
        cells.append(panel_svg(panel, series, width, height, duration))
    page = (
        '<html><body style="margin:0;background:#111217;font-family:Inter,Helvetica,Arial,sans-serif">'
        '<div style="color:#d8d9da;font-size:18px;padding:12px 14px 4px">wemasy Sendcloud push'
        f'<span style="color:#8e8e8e;font-size:12px;padding-left:14px">{html.escape(caption)}</span></div>'
        '<div style="display:grid;grid-template-columns:repeat(3,520px);gap:8px;padding:8px 14px">'
        + "".join(cells)
        + "</div></body></html>"
    )
    rows = math.ceil(len(PANELS) / 3)
    with tempfile.TemporaryDirectory() as tmp:
        page_path = Path(tmp) / "dashboard.html"
        page_path.write_text(page, encoding="utf-8")
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--screenshot={out.resolve()}",
                f"--window-size={3 * 520 + 2 * 8 + 28},{rows * (height + 8) + 60}",
                page_path.as_uri(),
            ],
            check=True,
            capture_output=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-dashboard", type=Path, help="write the Grafana dashboard JSON here")
    parser.add_argument("--scrapes", type=Path, help="JSON lines of /metrics scrapes (bench/load.py --scrapes)")
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard.png"))
    parser.add_argument("--window", type=float, default=10.0, help="seconds of each rate() window")
    parser.add_argument("--caption", default="")
    args = parser.parse_args()
    if args.write_dashboard:
        args.write_dashboard.write_text(json.dumps(dashboard(), indent=2) + "\n", encoding="utf-8")
    if args.scrapes:
        render(args.scrapes, args.out, args.window, args.caption)


if __name__ == "__main__":
    main()
