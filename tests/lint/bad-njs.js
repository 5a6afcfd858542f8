// What the njs linter must refuse (scripts/njs-lint.sh checks that it does): each line is
// something njs 0.8.9 cannot run or a mistake. Never installed (not under roles/).
var pair = {a: 1, b: 2};
var {a} = pair;
for (var x of [1, 2]) {
    undefinedGlobal(x, a);
}
export default {f: function (y = 1) { return y; }};
