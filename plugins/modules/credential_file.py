#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mcpsec.gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: credential_file
short_description: Manage the htpasswd and token-digest files nginx/njs authenticate against
version_added: 0.1.0
author: mcpsec.gateway maintainers (@mcpsec)
description:
  - Writes the complete list of users of an C(htpasswd) file (C(name:hash), read by nginx's
    C(auth_basic_user_file) with crypt(3)) or of a token-digest JSON file
    (a JSON object mapping each user to the SHA-256 hex digest of its token, keys sorted,
    read by the njs module).
  - Users not in O(entries) are removed. An htpasswd entry whose hash still verifies its
    secret (with the requested O(scheme) and O(rounds)) is kept byte for byte, so a second
    run changes nothing and changing one password rewrites only that user's line.
  - The file is written atomically (a temporary file in the same directory, given the
    requested owner, group and mode, then renamed over the old one). Without O(mode) a new
    file is created C(0600) and an existing file keeps its owner and mode.
  - The diff and the return values name users only; secrets and hashes are never shown.
options:
  path:
    description: Path of the file to manage. Its directory must exist.
    type: path
    required: true
  format:
    description:
      - V(htpasswd) writes C(name:hash) lines, sorted by name.
      - V(token_digest) writes a JSON object mapping each name to the SHA-256 hex digest of
        its token. Bearer tokens are long random strings, so an unsalted fast digest is
        sufficient and lets njs look a token up in constant time.
    type: str
    choices: [htpasswd, token_digest]
    default: htpasswd
  scheme:
    description:
      - Hash scheme for O(format=htpasswd). V(sha512_crypt) writes C($6$) hashes, V(bcrypt)
        writes C($2b$) hashes; nginx on Debian 13 verifies both through crypt(3).
      - An existing hash of another scheme is replaced (reported as updated).
      - Ignored for O(format=token_digest).
    type: str
    choices: [sha512_crypt, bcrypt]
    default: sha512_crypt
  rounds:
    description:
      - Work factor. Defaults to 5000 for V(sha512_crypt) (glibc's default) and 10 for
        V(bcrypt). nginx verifies the password on every request, so the cost is paid per
        request; raise it only with that in mind.
      - An existing hash with other rounds is replaced (reported as updated).
      - Ignored for O(format=token_digest).
    type: int
  entries:
    description:
      - The complete list of users. Each item needs C(name) and C(secret); C(password) and
        C(token) are accepted as aliases of C(secret), so the C(htpasswd_users) and
        C(token_users) lists of the P(mcpsec.gateway.expand_policy#filter) filter can be
        passed unchanged.
      - An empty list leaves a file with no users (nobody can log in).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: User name. No C(:), C(#) or whitespace.
        type: str
        required: true
      secret:
        description: The password (htpasswd) or token (token_digest).
        type: str
        required: true
        aliases: [password, token]
extends_documentation_fragment:
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would change without writing; hashes are computed but discarded.
  diff_mode:
    support: full
    details: The diff lists user names only; updated users are marked C((secret changed)).
  idempotent:
    support: full
    description: Running the task twice with the same input changes nothing the second time.
    details: Hashes that still verify are kept byte for byte.
  platform:
    platforms: posix
  safe_file_operations:
    support: full
    description: Uses Ansible's strict file operation functions to ensure proper permissions and avoid data corruption.
    details:
      - The new content goes to a 0600 temporary file in the same directory, gets its owner, group
        and mode, and is moved over the old file with C(AnsibleModule.atomic_move), which honours
        O(unsafe_writes) where an atomic rename is impossible (for example a bind-mounted file).
  vault:
    support: none
    description: Can automatically decrypt Ansible vaulted files.
requirements:
  - passlib (C(python3-passlib)) on the target for O(format=htpasswd) with O(scheme=sha512_crypt).
  - bcrypt (C(python3-bcrypt)) on the target for O(scheme=bcrypt).
notes:
  - The C(secret) of each entry is marked C(no_log) (not the whole O(entries) list, which
    would mask the user names in the results). Still run the task with C(no_log=true), as
    a failed template in O(entries) could show a secret.
seealso:
  - plugin: mcpsec.gateway.expand_policy
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Ensure the htpasswd file lists exactly the basic-auth users
  mcpsec.gateway.credential_file:
    path: /etc/nginx/mcpsec/htpasswd
    format: htpasswd
    scheme: sha512_crypt
    entries: "{{ __mcpsec.htpasswd_users }}"
    owner: root
    group: www-data
    mode: "0640"
  no_log: true

- name: Ensure the token digests list exactly the bearer-token users
  mcpsec.gateway.credential_file:
    path: /etc/nginx/mcpsec/tokens.json
    format: token_digest
    entries: "{{ __mcpsec.token_users }}"   # items {name, token}; token is an alias of secret
    owner: root
    group: www-data
    mode: "0640"
  no_log: true
"""

RETURN = r"""
added:
  description: Users that were (or in check mode would be) added.
  returned: always
  type: list
  elements: str
  sample: [alice]
updated:
  description: Users whose hash or digest was (or would be) replaced.
  returned: always
  type: list
  elements: str
  sample: [ci-bot]
removed:
  description: Users that were (or would be) removed because they are not in O(entries).
  returned: always
  type: list
  elements: str
  sample: [mallory]
path:
  description: The managed file.
  returned: always
  type: str
  sample: /etc/nginx/mcpsec/htpasswd
users:
  description: The user names the file holds after the run, sorted.
  returned: always
  type: list
  elements: str
  sample: [alice, ci-bot]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcpsec.gateway.plugins.module_utils._credentials import (
    CredentialError,
    FORMATS,
    SCHEMES,
    missing_library,
    plan,
    read_text,
    reserve,
    write_temp,
)


def _write(module, path, content, existed, file_args):
    """Temp file with the final owner, group and mode first, then module.atomic_move over path."""
    tmp = None
    reserved = False
    try:
        tmp = write_temp(path, content)
        if existed:
            # Keep the old file's owner and mode unless the task sets them.
            st = os.stat(path)
            os.chmod(tmp, st.st_mode & 0o7777)
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except OSError:
                pass
        # Owner, group and mode before the move, so readers never see the new file with the wrong ones.
        module.set_fs_attributes_if_different(dict(file_args, path=tmp), False)
        reserved = reserve(path)
        module.atomic_move(tmp, path, unsafe_writes=module.params['unsafe_writes'], keep_dest_attrs=False)
        tmp = None
    except CredentialError as exc:
        module.fail_json(msg=str(exc))
    except (OSError, IOError) as exc:
        module.fail_json(msg='cannot write %s: %s' % (path, exc.strerror))
    finally:
        if tmp is not None:
            module.cleanup(tmp)
            if reserved:
                module.cleanup(path)


ARGUMENT_SPEC = dict(
    path=dict(type='path', required=True),
    format=dict(type='str', default='htpasswd', choices=list(FORMATS)),
    scheme=dict(type='str', default='sha512_crypt', choices=list(SCHEMES)),
    rounds=dict(type='int'),
    entries=dict(
        # no_log on the secret only: on the whole list it would mask the user names
        # in added/updated/removed and the diff too.
        type='list', elements='dict', required=True,
        options=dict(
            name=dict(type='str', required=True),
            secret=dict(type='str', required=True, no_log=True, aliases=['password', 'token']),
        ),
    ),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, add_file_common_args=True, supports_check_mode=True)
    path = module.params['path']
    fmt = module.params['format']
    scheme = module.params['scheme']

    problem = missing_library(fmt, scheme)
    if problem:
        module.fail_json(msg=problem)
    if os.path.isdir(path):
        module.fail_json(msg='%s is a directory' % path)

    try:
        existing = read_text(path)
        result = plan(fmt, existing, module.params['entries'], scheme, module.params['rounds'])
    except CredentialError as exc:
        module.fail_json(msg=str(exc))
    except (OSError, IOError) as exc:
        module.fail_json(msg='cannot read %s: %s' % (path, exc.strerror))

    content_changed = existing != result.content
    file_args = module.load_file_common_arguments(module.params)

    if content_changed and not module.check_mode:
        _write(module, path, result.content, existing is not None, file_args)

    if existing is None and module.check_mode:
        attrs_changed = True
    else:
        attrs_changed = module.set_fs_attributes_if_different(file_args, False)

    changed = content_changed or attrs_changed
    output = dict(
        changed=changed,
        path=path,
        added=result.added,
        updated=result.updated,
        removed=result.removed,
        users=result.after_names,
    )
    if module._diff:
        output['diff'] = result.diff(path, content_changed)
    module.exit_json(**output)


if __name__ == '__main__':
    main()
