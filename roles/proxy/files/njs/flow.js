/*
 * flow: how the handler lets a request go on. allow() sends it to an upstream
 * location (the only way a request reaches a backend); settle() continues once
 * a promise resolves, and anything that throws or rejects on the way is
 * answered 500 (fail closed), never left hanging.
 */

import respond from 'respond.js';

/* What opens or ends a session goes to UPSTREAM_BIND (its header filter keeps
 * the bindings); everything else to UPSTREAM, which runs no njs. */
var UPSTREAM = '@mcpsec_upstream';
var UPSTREAM_BIND = '@mcpsec_upstream_bind';

function allow(r, location) {
    respond.setVar(r, 'mcpsec_decision', 'allow');   /* js_var default: deny; reason stays empty */
    r.internalRedirect(location);
}

function internalError(r, e) {
    ngx.log(ngx.ERR, 'mcpsec: ' + (e && e.stack ? e.stack : e));
    try {
        respond.deny(r, 500, 'internal_error', null);
    } catch (e2) {
        /* response already started: nothing more to do */
    }
}

function settle(r, promise, next) {
    promise.then(function (value) {
        try {
            next(value);
        } catch (e) {
            internalError(r, e);
        }
    }, function (e) {
        internalError(r, e);
    });
}

export default {
    UPSTREAM: UPSTREAM,
    UPSTREAM_BIND: UPSTREAM_BIND,
    allow: allow,
    settle: settle,
    internalError: internalError
};
