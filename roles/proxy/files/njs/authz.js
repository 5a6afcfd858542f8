/*
 * authz: policy decisions: the roles of a subject and what they allow, per
 * target kind (tools, resources, prompts), and list answers filtered to it.
 *
 * A role in policy.json (njs_policy version 2):
 *   {tools_all, tools: [names], resources_all, resources: [URI globs],
 *    prompts_all, prompts: [names]}
 * Resource globs: '*' matches any run of characters ('/' included); every
 * other character is literal. A resource URI is matched only in the form the
 * server resolves it to (uri.js); any other is allowed to no role.
 */

import util from 'util.js';
import uri from 'uri.js';

var hasOwn = util.hasOwn;

/* Keep only role names the policy defines (own properties: never __proto__). */
function knownRoles(policy, roles) {
    var out = [];
    if (!Array.isArray(roles)) {
        return out;
    }
    for (var i = 0; i < roles.length; i++) {
        var name = roles[i];
        if (typeof name === 'string' && hasOwn(policy.roles, name) && out.indexOf(name) < 0) {
            out.push(name);
        }
    }
    return out;
}

function rolesOfUser(policy, user) {
    return hasOwn(policy.users, user) ? knownRoles(policy, policy.users[user]) : [];
}

/* Does `pattern` (glob, '*' = any run of characters) match all of `s`? */
function globMatch(pattern, s) {
    if (pattern.indexOf('*') < 0) {
        return pattern === s;
    }
    var parts = pattern.split('*');
    var first = parts[0];
    var last = parts[parts.length - 1];
    if (s.length < first.length + last.length || s.slice(0, first.length) !== first ||
        s.slice(s.length - last.length) !== last) {
        return false;
    }
    var at = first.length;
    var end = s.length - last.length;
    for (var i = 1; i < parts.length - 1; i++) {
        if (parts[i] === '') {
            continue;
        }
        var found = s.indexOf(parts[i], at);
        if (found < 0 || found + parts[i].length > end) {
            return false;
        }
        at = found + parts[i].length;
    }
    return true;
}

/* The role fields of a target kind: [its "all" flag, its list], or null.
 * (Switches, not top-level tables: njs reruns each module's top level per request.) */
function fieldsOf(target) {
    switch (target) {
    case 'tool':
        return ['tools_all', 'tools'];
    case 'resource':
        return ['resources_all', 'resources'];
    case 'prompt':
        return ['prompts_all', 'prompts'];
    default:
        return null;
    }
}

/* May any of `roles` act on `name` of kind `target` ('tool' | 'resource' | 'prompt')? */
function allowed(policy, roles, target, name) {
    var f = fieldsOf(target);
    if (typeof name !== 'string' || f === null) {
        return false;
    }
    /* a resource URI only in the form the server resolves it to (uri.js), for every role */
    if (target === 'resource' && uri.uriProblem(name) !== null) {
        return false;
    }
    for (var i = 0; i < roles.length; i++) {
        if (!hasOwn(policy.roles, roles[i])) {
            continue;
        }
        var role = policy.roles[roles[i]];
        if (role[f[0]] === true) {
            return true;
        }
        var list = role[f[1]];
        for (var j = 0; j < list.length; j++) {
            if (target === 'resource' ? globMatch(list[j], name) : list[j] === name) {
                return true;
            }
        }
    }
    return false;
}

/* Do the roles grant every item of a target kind? (no filtering needed) */
function allowsAll(policy, roles, target) {
    var f = fieldsOf(target)[0];
    for (var i = 0; i < roles.length; i++) {
        if (hasOwn(policy.roles, roles[i]) && policy.roles[roles[i]][f] === true) {
            return true;
        }
    }
    return false;
}

/* Do the roles grant anything at all? A subject they grant nothing is
 * refused on every request, initialize included. */
function grantsAnything(policy, roles) {
    for (var i = 0; i < roles.length; i++) {
        if (!hasOwn(policy.roles, roles[i])) {
            continue;
        }
        var role = policy.roles[roles[i]];
        if (role.tools_all === true || role.resources_all === true || role.prompts_all === true ||
            role.tools.length > 0 || role.resources.length > 0 || role.prompts.length > 0) {
            return true;
        }
    }
    return false;
}

/* The list methods' answers: which array in `result`, which field of an
 * item names it, and which target kind decides. */
function listSpec(list) {
    switch (list) {
    case 'tools':
        return {key: 'tools', field: 'name', target: 'tool'};
    case 'resources':
        return {key: 'resources', field: 'uri', target: 'resource'};
    case 'templates':
        return {key: 'resourceTemplates', field: 'uriTemplate', target: 'resource'};
    case 'prompts':
        return {key: 'prompts', field: 'name', target: 'prompt'};
    default:
        return null;
    }
}

function listTarget(list) {
    var spec = listSpec(list);
    return spec === null ? null : spec.target;
}

/* Filter a list method's `result` in place to what the roles allow; every
 * other member (nextCursor, _meta) is kept. Returns null or a reason when
 * the answer is not the list it must be (never passed on unfiltered). A
 * template is shown when a role pattern matches its uriTemplate text. */
function filterListResult(policy, roles, list, result) {
    var spec = listSpec(list);
    if (spec === null) {
        return 'list_unknown';
    }
    if (result === null || typeof result !== 'object' || Array.isArray(result) ||
        !Array.isArray(result[spec.key])) {
        return 'list_malformed';
    }
    var items = result[spec.key];
    var kept = [];
    for (var i = 0; i < items.length; i++) {
        var item = items[i];
        if (item === null || typeof item !== 'object' || typeof item[spec.field] !== 'string') {
            return 'list_malformed';
        }
        if (allowed(policy, roles, spec.target, item[spec.field])) {
            kept.push(item);
        }
    }
    result[spec.key] = kept;
    return null;
}

export default {
    knownRoles: knownRoles,
    rolesOfUser: rolesOfUser,
    globMatch: globMatch,
    allowed: allowed,
    allowsAll: allowsAll,
    grantsAnything: grantsAnything,
    listTarget: listTarget,
    filterListResult: filterListResult
};
