/*
 * util: small helpers shared by every module.
 */

var MAX_LOG_FIELD = 128;

function hasOwn(o, k) {
    return o !== null && typeof o === 'object' && Object.prototype.hasOwnProperty.call(o, k);
}

/* Membership by index: arrays from js_preload_object lack Array.prototype methods. */
function includes(arr, v) {
    for (var i = 0; i < arr.length; i++) {
        if (arr[i] === v) {
            return true;
        }
    }
    return false;
}

/* Join by index, for the same reason (default separator ','). */
function joinList(arr, sep) {
    var s = sep === undefined ? ',' : sep;
    var out = '';
    for (var i = 0; i < arr.length; i++) {
        out += (i > 0 ? s : '') + String(arr[i]);
    }
    return out;
}

function isPlainObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function clip(s) {
    s = String(s);
    return s.length > MAX_LOG_FIELD ? s.slice(0, MAX_LOG_FIELD) : s;
}

function sha256hex(s) {
    return require('crypto').createHash('sha256').update(s).digest('hex');
}

export default {
    hasOwn: hasOwn,
    includes: includes,
    joinList: joinList,
    isPlainObject: isPlainObject,
    clip: clip,
    sha256hex: sha256hex
};
