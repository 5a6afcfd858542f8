"""bearer mode, issue 21 item 1: the MCP metrics on the loopback status server move with the requests
(counted when the audit line is written), with bounded labels, for 127.0.0.1 only."""
import re
import time

import pytest

from mcp_wire import rpc, tool_call

pytestmark = pytest.mark.applies(modes=('bearer',))


def metric(text, name, **labels):
    """The sum of the samples of `name` whose labels include `labels` (Prometheus text format)."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(r'^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ''))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def scrape(client, src='127.0.0.1'):
    return client.http('GET', path='/metrics', port=8081, src=src)


def scrape_moved(client, before):
    """A scrape once the requests are counted: in the log phase, which nginx runs after the client
    has the answer (on a loaded machine a scrape right after the last answer can precede them)."""
    deadline = time.monotonic() + 10
    while True:
        after = scrape(client).text
        if (metric(after, 'mcpsec_request_duration_seconds_count', server='default', method='tools/call')
                - metric(before, 'mcpsec_request_duration_seconds_count', server='default', method='tools/call') >= 3
                and metric(after, 'mcpsec_auth_failures_total', mode='bearer')
                - metric(before, 'mcpsec_auth_failures_total', mode='bearer') >= 1) or time.monotonic() > deadline:
            return after
        time.sleep(0.1)


def test_metrics(client, check, addresses):
    _r, sid = client.initialize('bob')
    first = scrape(client)
    check('metrics: the loopback /metrics answers in the Prometheus text format', first.status_code == 200
          and (first.headers.get('content-type') or '').startswith('text/plain; version=0.0.4')
          and b'# TYPE mcpsec_requests_total counter' in first.content, first)
    before = first.text
    client.post('bob', tool_call('echo', {'text': 'x'}, id_=2), sid=sid)
    client.post('bob', tool_call('add', {'a': 1, 'b': 2}, id_=3), sid=sid)
    client.post('bob', tool_call('no-such-tool-' + 'x' * 20, id_=4), sid=sid)
    client.post(None, rpc('ping'), extra=[('Authorization', 'Bearer ' + 'Z' * 44)], src=addresses(1)[0])
    after = scrape_moved(client, before)

    def moved(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)
    check('metrics: an allowed tools/call counted (requests, tool echo, duration)',
          moved('mcpsec_requests_total', server='default', method='tools/call', decision='allow', code='200') == 1
          and moved('mcpsec_tool_calls_total', server='default', tool='echo', decision='allow') == 1
          and moved('mcpsec_request_duration_seconds_count', server='default', method='tools/call') == 3
          and moved('mcpsec_request_duration_seconds_bucket', server='default', method='tools/call', le='+Inf') == 3,
          after[-1500:])
    check('metrics: denied tools/calls counted with their reason; tools no role names are "other"',
          moved('mcpsec_requests_total', server='default', method='tools/call', decision='deny',
                reason='tool_denied') == 2
          and moved('mcpsec_tool_calls_total', server='default', tool='other', decision='deny') == 2
          and 'no-such-tool' not in after and 'tool="add"' not in after, after[-1500:])
    check('metrics: a wrong token is an authentication failure of mode bearer',
          moved('mcpsec_auth_failures_total', mode='bearer') == 1, after[-1500:])
    check('metrics: live sessions and the cap per server, every backend instance probed',
          metric(after, 'mcpsec_sessions_active', server='default') >= 1
          and metric(after, 'mcpsec_sessions_limit', server='time') == 4
          and 'mcpsec_backend_up{server="default",backend="0"} 1' in after
          and 'mcpsec_backend_up{server="time",backend="0"}' in after, after[-1500:])
    r = scrape(client, src=addresses(1)[0])
    check('metrics: the status server answers 127.0.0.1 only (another loopback address: 403)',
          r.status_code == 403 and b'mcpsec_' not in r.content, r)
