#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: source_patch
short_description: Apply or revert a literal patch to one installed source file it recognises by checksum
version_added: 0.2.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - Patches one file of an installed package (for example a JavaScript file under
    C(node_modules)) with literal edits, each an exact text that must occur once and its
    replacement.
  - The file is recognised by its SHA-256. Only the stock file (O(stock_sha256)) is patched,
    and the result must have O(patched_sha256). A file with any other checksum (another
    version, a local change) is refused and left as it is, so a patch never lands on code it
    was not written for.
  - With O(state=absent) a patched file is turned back into the stock one (the edits in
    reverse) and a stock file is left alone.
  - The new content is written atomically (a temporary file in the same directory with the
    old file's owner and mode, then renamed over it).
options:
  path:
    description: The installed file.
    type: path
    required: true
  stock_sha256:
    description: SHA-256 (lowercase hex) of the file as the package ships it.
    type: str
    required: true
  patched_sha256:
    description: SHA-256 (lowercase hex) of the file once every edit is applied.
    type: str
    required: true
  edits:
    description: The edits, applied in order; each O(edits[].old) must occur exactly once.
    type: list
    elements: dict
    required: true
    suboptions:
      old:
        description: Exact text in the stock file.
        type: str
        required: true
      new:
        description: Its replacement.
        type: str
        required: true
  state:
    description: V(present) patches the stock file; V(absent) restores it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the file would change; the edits are applied in memory and checked.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Running the task twice with the same input changes nothing the second time.
  platform:
    platforms: posix
seealso:
  - module: ansible.builtin.replace
"""

EXAMPLES = r"""
- name: Ensure the MCP SDK inside supergateway carries the bridge patch
  mcpsec.gateway.source_patch:
    path: /opt/mcpsec/supergateway/node_modules/@modelcontextprotocol/sdk/dist/esm/server/webStandardStreamableHttp.js
    stock_sha256: 7f13981326b31e78ae7c66406e2961176c2619bb1b2f6b6e4b99ac78e90f1d8c
    patched_sha256: "{{ patched }}"
    edits:
      - old: "const isInitializationRequest = messages.some(isInitializeRequest);"
        new: "const isInitializationRequest = messages.some(isInitializeMessage);"
"""

RETURN = r"""
sha256:
  description: SHA-256 of the file after the run (in check mode, what it would be).
  returned: success
  type: str
  sample: 7f13981326b31e78ae7c66406e2961176c2619bb1b2f6b6e4b99ac78e90f1d8c
state:
  description: What the file is after the run, V(patched) or V(stock).
  returned: success
  type: str
  sample: patched
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcpsec.gateway.plugins.module_utils._source_patch import (
    PatchError,
    check_spec,
    digest,
    plan,
)


def _write(module, path, content):
    """A temporary file beside path with its owner and mode, then an atomic rename over it."""
    st = os.stat(path)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, 'wb') as fh:
            fh.write(content)
        os.chmod(tmp, st.st_mode & 0o7777)
        os.chown(tmp, st.st_uid, st.st_gid)
        module.atomic_move(tmp, path, keep_dest_attrs=False)
        tmp = None
    finally:
        if tmp is not None:
            module.cleanup(tmp)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            stock_sha256=dict(type='str', required=True),
            patched_sha256=dict(type='str', required=True),
            edits=dict(type='list', elements='dict', required=True,
                       options=dict(old=dict(type='str', required=True), new=dict(type='str', required=True))),
            state=dict(type='str', default='present', choices=['present', 'absent']),
        ),
        supports_check_mode=True,
    )
    p = module.params
    problems = check_spec(p['stock_sha256'], p['patched_sha256'], p['edits'])
    if problems:
        module.fail_json(msg='; '.join(problems))
    try:
        with open(p['path'], 'rb') as fh:
            data = fh.read()
    except (OSError, IOError) as exc:
        module.fail_json(msg='cannot read %s: %s' % (p['path'], exc.strerror))
    try:
        new = plan(data, p['path'], p['stock_sha256'], p['patched_sha256'], p['edits'], p['state'])
    except PatchError as exc:
        module.fail_json(msg=str(exc), sha256=digest(data))
    result = dict(changed=new is not None, sha256=digest(new if new is not None else data),
                  state='patched' if p['state'] == 'present' else 'stock')
    if new is not None and not module.check_mode:
        try:
            _write(module, p['path'], new)
        except (OSError, IOError) as exc:
            module.fail_json(msg='cannot write %s: %s' % (p['path'], exc.strerror))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
