// The njs linter (scripts/test.sh, "njs lint"): ESLint's core rules that catch mistakes, and the
// language subset of njs 0.8.9 (../../shared DESIGN, roles/proxy/files/njs/mcpsec.js): what njs
// cannot run is an error here, before a test host ever loads it. No plugins, no imports: this
// file runs from wherever the pinned ESLint is installed (.cache/njs-lint).
const NJS_GLOBALS = {
  // njs and nginx
  ngx: 'readonly', njs: 'readonly', require: 'readonly', Buffer: 'readonly', crypto: 'readonly',
  console: 'readonly', process: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly',
  TextEncoder: 'readonly', TextDecoder: 'readonly', atob: 'readonly', btoa: 'readonly',
  // js_preload_object (njs_http.conf.j2)
  mcpsec_policy: 'readonly', mcpsec_tokens: 'readonly', mcpsec_route: 'readonly', mcpsec_route_key: 'readonly',
};

const STANDARD = {
  Object: 'readonly', Array: 'readonly', String: 'readonly', Number: 'readonly', Boolean: 'readonly',
  JSON: 'readonly', Math: 'readonly', Date: 'readonly', RegExp: 'readonly', Error: 'readonly',
  TypeError: 'readonly', RangeError: 'readonly', SyntaxError: 'readonly', Promise: 'readonly',
  Uint8Array: 'readonly', Uint32Array: 'readonly', ArrayBuffer: 'readonly', DataView: 'readonly',
  isFinite: 'readonly', isNaN: 'readonly', parseInt: 'readonly', parseFloat: 'readonly',
  encodeURIComponent: 'readonly', decodeURIComponent: 'readonly', encodeURI: 'readonly', decodeURI: 'readonly',
  undefined: 'readonly', Infinity: 'readonly', NaN: 'readonly', Symbol: 'readonly',
};

// njs 0.8.9 has none of these (DESIGN.md "njs pitfalls"; mcpsec.js's header).
const NJS_SUBSET = [
  {selector: 'ObjectPattern', message: 'njs: no destructuring'},
  {selector: 'ArrayPattern', message: 'njs: no destructuring'},
  {selector: 'ClassDeclaration', message: 'njs: no classes'},
  {selector: 'ClassExpression', message: 'njs: no classes'},
  {selector: 'ForOfStatement', message: 'njs: no for...of'},
  {selector: 'SpreadElement', message: 'njs: no spread'},
  {selector: 'RestElement', message: 'njs: no rest parameters'},
  {selector: 'AssignmentPattern', message: 'njs: no default parameters'},
  {selector: 'NewExpression[callee.name=/^(Map|Set|WeakMap|WeakSet)$/]', message: 'njs: no Map/Set'},
  {selector: 'CallExpression AwaitExpression', message: 'njs: no await inside call arguments'},
];

// ESLint's recommended rules that find mistakes (listed, so no import of @eslint/js is needed;
// no-useless-escape left out: an escaped '/' in a character class is what njs's lexer reads
// without doubt).
const MISTAKES = [
  'constructor-super', 'for-direction', 'getter-return', 'no-async-promise-executor', 'no-case-declarations',
  'no-class-assign', 'no-compare-neg-zero', 'no-cond-assign', 'no-const-assign', 'no-constant-binary-expression',
  'no-constant-condition', 'no-control-regex', 'no-debugger', 'no-delete-var', 'no-dupe-args', 'no-dupe-else-if',
  'no-dupe-keys', 'no-duplicate-case', 'no-empty-character-class', 'no-empty-pattern', 'no-ex-assign',
  'no-fallthrough', 'no-func-assign', 'no-global-assign', 'no-import-assign', 'no-invalid-regexp',
  'no-irregular-whitespace', 'no-loss-of-precision', 'no-misleading-character-class', 'no-new-native-nonconstructor',
  'no-nonoctal-decimal-escape', 'no-obj-calls', 'no-octal', 'no-prototype-builtins', 'no-redeclare',
  'no-regex-spaces', 'no-self-assign', 'no-setter-return', 'no-shadow-restricted-names', 'no-sparse-arrays',
  'no-this-before-super', 'no-undef', 'no-unexpected-multiline', 'no-unreachable', 'no-unsafe-finally',
  'no-unsafe-negation', 'no-unsafe-optional-chaining', 'no-unused-labels', 'no-unused-private-class-members',
  'no-unused-vars', 'no-useless-backreference', 'no-useless-catch', 'no-with',
  'require-yield', 'use-isnan', 'valid-typeof',
];

export default [
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: {...STANDARD, ...NJS_GLOBALS},
    },
    linterOptions: {reportUnusedDisableDirectives: 'error'},
    rules: {
      ...Object.fromEntries(MISTAKES.map((rule) => [rule, 'error'])),
      'no-unused-vars': ['error', {args: 'none', caughtErrors: 'none'}],
      'no-restricted-syntax': ['error', ...NJS_SUBSET],
      'eqeqeq': ['error', 'always'],
      'no-implicit-globals': 'error',
      'no-shadow': 'error',
      'no-var': 'off',
    },
  },
  {
    // the njs test scripts: one long top level of cases (their names repeat by design)
    files: ['**/tests/njs/*.js'],
    rules: {'no-shadow': 'off', 'no-redeclare': 'off'},
  },
];
