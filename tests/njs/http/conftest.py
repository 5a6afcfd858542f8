"""pytest fixtures of the nginx-level njs cases (run inside the test container by inner.sh).

The gateway under test is chosen by environment variables inner.sh sets:
MCPSEC_NJS_MODE (basic, bearer, oidc), MCPSEC_NJS_VARIANT ('', hostcap, stores) and
MCPSEC_NJS_FIXTURES (the fixtures directory). A module declares where it applies with
``pytestmark = pytest.mark.applies(modes=..., variants=...)``; the others are deselected.
MCPSEC_NJS_ORDER=reverse or shuffle:<seed> runs the cases in another order (they must not care).
"""
import os
import random
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, '..'), os.path.join(HERE, '..', '..', 'lib')]

import gateway  # noqa: E402  pylint: disable=wrong-import-position

MODE = os.environ.get('MCPSEC_NJS_MODE', '')
VARIANT = os.environ.get('MCPSEC_NJS_VARIANT', '')


def pytest_configure(config):
    config.addinivalue_line('markers', 'applies(modes, variants): the auth modes and variants a module runs in')
    if MODE not in ('basic', 'bearer', 'oidc') or VARIANT not in ('', 'hostcap', 'stores'):
        raise pytest.UsageError('MCPSEC_NJS_MODE must be basic, bearer or oidc and MCPSEC_NJS_VARIANT '
                                "'', hostcap or stores (got %r, %r): set them as tests/njs/inner.sh does"
                                % (MODE, VARIANT))


def _applies(item):
    mark = item.get_closest_marker('applies')
    modes = mark.kwargs.get('modes', ('basic', 'bearer', 'oidc')) if mark else ('basic', 'bearer', 'oidc')
    variants = mark.kwargs.get('variants', ('',)) if mark else ('',)
    return MODE in modes and VARIANT in variants


def pytest_collection_modifyitems(config, items):
    keep = [i for i in items if _applies(i)]
    gone = [i for i in items if not _applies(i)]
    if gone:
        config.hook.pytest_deselected(items=gone)
    # the audit case holds in any order; run last by default, it reads the whole run's log
    keep.sort(key=lambda i: i.module.__name__ == 'test_audit')
    order = os.environ.get('MCPSEC_NJS_ORDER', '')
    if order == 'reverse':
        keep.reverse()
    elif order.startswith('shuffle:'):
        random.Random(order.split(':', 1)[1]).shuffle(keep)
    elif order:
        raise pytest.UsageError('MCPSEC_NJS_ORDER: reverse or shuffle:<seed>, not %r' % order)
    items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A test fails when any of its checks failed (each check printed what it sent and got)."""
    result = yield
    checks = item.funcargs.get('check')
    if checks is not None and checks.failed:
        raise AssertionError('%d check(s) failed:\n%s' % (len(checks.failed), '\n'.join(checks.failed)))
    return result


@pytest.fixture(scope='session')
def gw():
    """The gateway of this run: mode, secrets, fixtures, the request count the audit log must match."""
    return gateway.Gateway(MODE, VARIANT, os.environ.get('MCPSEC_NJS_FIXTURES', '/opt/mcpsec-test/fx'))


@pytest.fixture
def check(gw):
    return gateway.Checks(gw.label)


@pytest.fixture
def client(gw):
    """A client bound to a fresh loopback source address (no per-address limit leaks between tests);
    the sessions it opened are ended when the test ends."""
    c = gateway.Client(gw, gw.next_address())
    yield c
    c.close()


@pytest.fixture
def addresses(gw):
    """Fresh loopback source addresses: addresses(n) hands out n more."""
    return gw.next_addresses


@pytest.fixture
def users(gw):
    """The admin, reader and user without grants of this mode."""
    return gw.users


@pytest.fixture
def reader_sid(client, users):
    r, sid = client.initialize(users['reader'])
    assert r.status_code == 200 and sid, 'reader initialize: %r' % r
    return sid


@pytest.fixture
def admin_sid(client, users):
    r, sid = client.initialize(users['admin'])
    assert r.status_code == 200 and sid, 'admin initialize: %r' % r
    return sid


@pytest.fixture
def kept_file():
    """keep(path, then=None) -> the file's text; the file is written back when the test ends
    (then() runs after, e.g. an nginx reload for policy.json)."""
    kept = []

    def keep(path, then=None):
        with open(path) as f:
            text = f.read()
        kept.append((path, text, then))
        return text
    yield keep
    for path, text, then in reversed(kept):
        with open(path, 'w') as f:
            f.write(text)
        if then:
            then()
