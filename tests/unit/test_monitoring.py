"""The shipped alert rules and dashboard (monitoring/) query only metrics the gateway exports, and
the dashboard imports as is: its data source is the DS_PROMETHEUS input on every query.
(The Molecule ops scenario runs every query against a real Prometheus; this fails fast.)"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NJS = (ROOT / 'roles' / 'proxy' / 'files' / 'njs' / 'metrics.js').read_text(encoding='utf-8')
RULES = yaml.safe_load((ROOT / 'monitoring' / 'prometheus' / 'mcpsec.rules.yml').read_text(encoding='utf-8'))
BOARD = json.loads((ROOT / 'monitoring' / 'grafana' / 'mcpsec-gateway.json').read_text(encoding='utf-8'))
# What prometheus-nginx-exporter 1.4 and Prometheus itself export, as far as these files use them.
OTHERS = {'nginx_connections_active', 'nginx_http_requests_total', 'up'}
HISTOGRAM_SUFFIXES = ('_bucket', '_sum', '_count')


def exported():
    names = set(re.findall(r"'(mcpsec_[a-z_]+)'", NJS))
    for name in list(names):
        if name.endswith('_seconds') and 'histogram' in NJS:
            names.update(name + s for s in HISTOGRAM_SUFFIXES)
    return names | OTHERS


def metrics_in(expr):
    return set(re.findall(r'\b(?:mcpsec|nginx)_[a-z_]+\b', expr)) | set(re.findall(r'\bup(?=\{)', expr))


def dashboard_targets():
    return [(p['title'], t) for p in BOARD['panels'] for t in p.get('targets', [])]


def test_the_renderer_exports_the_documented_families():
    assert {'mcpsec_requests_total', 'mcpsec_tool_calls_total', 'mcpsec_request_duration_seconds_bucket',
            'mcpsec_sessions_active', 'mcpsec_sessions_limit', 'mcpsec_auth_failures_total',
            'mcpsec_limit_refusals_total', 'mcpsec_backend_up',
            'mcpsec_audit_log_last_write_timestamp_seconds'} <= exported()


@pytest.mark.parametrize('rule', RULES['groups'][0]['rules'], ids=lambda r: r['alert'])
def test_every_alert_queries_exported_metrics(rule):
    used = metrics_in(rule['expr'])
    assert used, rule['expr']
    assert used <= exported(), used - exported()
    assert rule['labels']['severity'] in ('warning', 'critical') and rule['annotations']['summary']


@pytest.mark.parametrize('title,target', dashboard_targets(), ids=lambda v: v if isinstance(v, str) else '')
def test_every_panel_queries_exported_metrics_through_the_input(title, target):
    used = metrics_in(target['expr'])
    assert used and used <= exported(), (title, used - exported())
    assert target['datasource']['uid'] == '${DS_PROMETHEUS}'


def test_the_dashboard_declares_its_input_and_variables():
    assert [i['name'] for i in BOARD['__inputs']] == ['DS_PROMETHEUS']
    assert [v['name'] for v in BOARD['templating']['list']] == ['instance', 'server']
    assert len(dashboard_targets()) >= 10
