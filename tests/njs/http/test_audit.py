"""Every mode: the JSON audit log, one line per MCP request of the whole run so far, no credential."""
import json
import os
import re
import sys
import time

from gateway import AUDIT
from mcp_wire import rpc, tool_call

FIELDS = {'time', 'client', 'subject', 'roles', 'method', 'http_method', 'tool', 'decision', 'reason', 'status',
          'bytes', 'request_time', 'upstream_time', 'target_type', 'target', 'session', 'rpc_id', 'request_id',
          'protocol_version', 'user_agent', 'trace_id'}
MS_TIME = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$')


def secrets_of(gw):
    if gw.mode == 'basic':
        return list(gw.secrets['passwords'].values())
    if gw.mode == 'bearer':
        return list(gw.secrets['tokens'].values())
    return [t for t in gw.fx['tokens'].values() if isinstance(t, str)]


def read_lines(want):
    """The log's lines once it has `want` of them: a line is written when nginx frees the request,
    which can trail the response (lingering close; bearer buffers the log up to 1 s per worker)."""
    lines = []
    for _attempt in range(150):
        with open(AUDIT) as f:
            lines = f.read().splitlines()
        if len(lines) >= want:
            break
        time.sleep(0.1)
    return lines


def summarize(lines):
    """The collection's own reader (audit_summary filter) over the lines."""
    # as a member of plugin_utils (a namespace package): _audit imports _units relatively
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'plugins'))
    from plugin_utils import _audit  # pylint: disable=import-outside-toplevel,import-error
    return _audit.summarize(lines)


def test_audit_log(gw, client, users, check, reader_sid):
    # the lines this case reads for: a tool denial, an allowed call, a 401
    client.post(users['reader'], tool_call('admin-only-tool', id_=3), sid=reader_sid)
    client.post(users['reader'], tool_call('echo', id_=4), sid=reader_sid)
    client.post(None, rpc('ping'))
    lines = read_lines(gw.mcp_requests)
    recs, bad = [], 0
    for line in lines:
        try:
            recs.append(json.loads(line))
        except ValueError:
            bad += 1
    check('audit: every line is JSON (%d lines)' % len(lines), bad == 0 and len(lines) > 0, bad)
    check('audit: one line per request (%d requests)' % gw.mcp_requests, len(lines) == gw.mcp_requests,
          (len(lines), gw.mcp_requests))
    check('audit: fields present', all(FIELDS <= set(r) for r in recs), recs[:1])
    check('audit: every line has a millisecond time and a trace id', all(
        MS_TIME.match(r.get('time', '')) and re.match(r'^[0-9a-f]{32}$', r.get('trace_id', '')) for r in recs),
        [r for r in recs if not MS_TIME.match(r.get('time', ''))][:2])
    text = '\n'.join(lines)
    leaked = [s for s in secrets_of(gw) if s and s in text]
    check('audit: no credential in the log', not leaked, [s[:6] + '...' for s in leaked])
    denied = [r for r in recs if r.get('reason') == 'tool_denied' and r.get('tool') == 'admin-only-tool']
    check('audit: tool denial logged with subject, tool, reason', bool(denied) and denied[0]['decision'] == 'deny'
          and denied[0]['subject'] != '' and denied[0]['status'] == 403, denied[:1])
    allowed = [r for r in recs if r.get('decision') == 'allow' and r.get('method') == 'tools/call']
    check('audit: allowed call logged with upstream time', bool(allowed) and allowed[0]['upstream_time'] != '', allowed[:1])
    unauth = [r for r in recs if r.get('status') == 401]
    check('audit: 401s logged as deny with a reason', bool(unauth) and all(r['decision'] == 'deny' and r['reason']
                                                                           for r in unauth), unauth[:2])
    summary = summarize(lines)
    check('audit: audit_summary reads every line (%d)' % summary['total'],
          summary['total'] == len(lines) and summary['invalid_lines'] == 0 and summary['untimed_lines'] == 0
          and summary['status_counts'].get(403, summary['status_counts'].get('403', 0)) > 0 and summary['top_methods'],
          {k: summary[k] for k in ('total', 'invalid_lines', 'untimed_lines', 'status_counts', 'top_methods')})
    check('audit: every line has a decision', all(r.get('decision') in ('allow', 'deny') for r in recs),
          [r for r in recs if r.get('decision') not in ('allow', 'deny')][:2])
