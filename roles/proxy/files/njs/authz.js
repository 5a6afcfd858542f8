/*
 * authz: policy decisions: roles of a subject, what they allow.
 */

import util from 'util.js';

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

function toolAllowed(policy, roles, tool) {
    for (var i = 0; i < roles.length; i++) {
        if (!hasOwn(policy.roles, roles[i])) {
            continue;
        }
        var role = policy.roles[roles[i]];
        if (role.all === true) {
            return true;
        }
        var tools = role.tools || [];
        for (var j = 0; j < tools.length; j++) {
            if (tools[j] === tool) {
                return true;
            }
        }
    }
    return false;
}

export default {
    knownRoles: knownRoles,
    rolesOfUser: rolesOfUser,
    toolAllowed: toolAllowed
};
