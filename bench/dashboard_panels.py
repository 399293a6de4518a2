"""The panels of docs/grafana-dashboard.json, in one place: title, unit, and each query in PromQL.

``bench/dashboard_render.py`` writes the dashboard JSON from this list and draws the same panels from
``/metrics`` scrapes, so the picture in the README and the dashboard cannot drift apart.
Each query is ``(legend, PromQL, how the renderer evaluates it)``; the evaluation is one of a few
shapes: ``("rate", metric, by)``, ``("gauge", metric, by)``, ``("quantile", q, histogram, by)``.
"""

from __future__ import annotations

from typing import Any

Query = tuple[str, str, tuple[Any, ...]]

PANELS: list[dict[str, Any]] = [
    {
        "title": "Pushes per second, by outcome",
        "unit": "reqps",
        "queries": [
            (
                "{{outcome}}",
                "sum by (outcome) (rate(wemasy_pushes_total[1m]))",
                ("rate", "wemasy_pushes_total", ("outcome",)),
            ),
        ],
    },
    {
        "title": "Orders per second: pushed by clients, and done by the workers",
        "unit": "ops",
        "queries": [
            (
                "push: {{category}}",
                "sum by (category) (rate(wemasy_push_orders_total[1m]))",
                ("rate", "wemasy_push_orders_total", ("category",)),
            ),
            (
                "worker: {{outcome}}",
                "sum by (outcome) (rate(wemasy_pipeline_orders_total[1m]))",
                ("rate", "wemasy_pipeline_orders_total", ("outcome",)),
            ),
        ],
    },
    {
        "title": "Open shipments, by state",
        "unit": "short",
        "queries": [("{{state}}", "sum by (state) (wemasy_shipments)", ("gauge", "wemasy_shipments", ("state",)))],
    },
    {
        "title": "Celery queue length",
        "unit": "short",
        "queries": [
            (
                "{{queue}}",
                "sum by (queue) (wemasy_celery_queue_length)",
                ("gauge", "wemasy_celery_queue_length", ("queue",)),
            )
        ],
    },
    {
        "title": "Sendcloud calls per second, by endpoint and status",
        "unit": "reqps",
        "queries": [
            (
                "{{method}} {{endpoint}} {{status}}",
                "sum by (method, endpoint, status) (rate(wemasy_sendcloud_calls_total[1m]))",
                ("rate", "wemasy_sendcloud_calls_total", ("method", "endpoint", "status")),
            ),
        ],
    },
    {
        "title": "Sendcloud latency p50 / p99",
        "unit": "s",
        "queries": [
            (
                "p50 {{endpoint}}",
                "histogram_quantile(0.5, sum by (le, endpoint) "
                "(rate(wemasy_sendcloud_call_duration_seconds_bucket[5m])))",
                ("quantile", 0.5, "wemasy_sendcloud_call_duration_seconds", ("endpoint",)),
            ),
            (
                "p99 {{endpoint}}",
                "histogram_quantile(0.99, sum by (le, endpoint) "
                "(rate(wemasy_sendcloud_call_duration_seconds_bucket[5m])))",
                ("quantile", 0.99, "wemasy_sendcloud_call_duration_seconds", ("endpoint",)),
            ),
        ],
    },
    {
        "title": "Sendcloud 429s and request-budget waits per second",
        "unit": "ops",
        "queries": [
            (
                "429 {{endpoint}}",
                "sum by (endpoint) (rate(wemasy_sendcloud_rate_limited_total[1m]))",
                ("rate", "wemasy_sendcloud_rate_limited_total", ("endpoint",)),
            ),
            (
                "budget {{kind}} {{outcome}}",
                "sum by (kind, outcome) (rate(wemasy_sendcloud_budget_waits_total[1m]))",
                ("rate", "wemasy_sendcloud_budget_waits_total", ("kind", "outcome")),
            ),
        ],
    },
    {
        "title": "Batch duration p50 / p95 (push to finish)",
        "unit": "s",
        "queries": [
            (
                "p50",
                "histogram_quantile(0.5, sum by (le) (rate(wemasy_batch_duration_seconds_bucket[15m])))",
                ("quantile", 0.5, "wemasy_batch_duration_seconds", ()),
            ),
            (
                "p95",
                "histogram_quantile(0.95, sum by (le) (rate(wemasy_batch_duration_seconds_bucket[15m])))",
                ("quantile", 0.95, "wemasy_batch_duration_seconds", ()),
            ),
        ],
    },
    {
        "title": "Webhook deliveries per second, by outcome",
        "unit": "ops",
        "queries": [
            (
                "{{outcome}}",
                "sum by (outcome) (rate(wemasy_webhook_deliveries_total[5m]))",
                ("rate", "wemasy_webhook_deliveries_total", ("outcome",)),
            ),
        ],
    },
]
