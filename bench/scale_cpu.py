"""Run a load generator and book the CPU time it caused to process groups.

Usage: python3 scale_cpu.py <command> [args...]   (inside a bench/scale.sh host)

Prints the command's output, then one line:
  CPU <group>=<seconds> ... wall=<seconds> machine=<busy CPU seconds of the whole machine>
Groups, by process: nginx; supergateway (node .../supergateway/dist/index.js); contextforge
(mcpgateway and its translate bridge); children (every process below a supergateway or a
translate bridge: the sessions' MCP servers); loadgen (the command itself, from its rusage);
other (the rest of this host). "machine" is the busy time of every CPU of the machine
(/proc/stat: other containers included), so machine minus the groups is what others took.
"""
import os
import resource
import subprocess
import sys
import time

TICK = os.sysconf('SC_CLK_TCK')


def processes():
    procs = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % pid) as f:
                stat = f.read()
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode(errors='replace')
        except OSError:
            continue
        comm = stat[stat.index('(') + 1:stat.rindex(')')]
        fields = stat[stat.rindex(')') + 2:].split()
        # fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15
        procs[int(pid)] = (comm, int(fields[1]), int(fields[11]) + int(fields[12]), cmd)
    return procs


def group(pid, procs):
    comm, ppid, cmd = procs[pid][0], procs[pid][1], procs[pid][3]
    if 'supergateway/dist/index.js' in cmd:
        return 'supergateway'
    if 'mcpgateway' in cmd:
        return 'contextforge'
    if comm == 'nginx':
        return 'nginx'
    seen = 0
    while ppid in procs and seen < 64:
        parent = procs[ppid]
        if 'supergateway/dist/index.js' in parent[3] or 'mcpgateway.translate' in parent[3]:
            return 'children'
        ppid, seen = parent[1], seen + 1
    return 'other'


def machine_busy():
    with open('/proc/stat') as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    return sum(cpu) - cpu[3] - cpu[4]   # all but idle and iowait


def main():
    me = os.getpid()
    before, busy0, t0 = processes(), machine_busy(), time.monotonic()
    rc = subprocess.run(sys.argv[1:], check=False).returncode
    after, busy1, t1 = processes(), machine_busy(), time.monotonic()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    sums = {'nginx': 0, 'supergateway': 0, 'children': 0, 'contextforge': 0, 'other': 0}
    for pid, (comm, _ppid, ticks, cmd) in after.items():
        if pid == me:
            continue
        base = before.get(pid)
        # a pid reused by another process (its command differs) counts from zero
        start = base[2] if base and base[3] == cmd and base[0] == comm else 0
        sums[group(pid, after)] += ticks - start
    out = ['%s=%.2f' % (k, v / TICK) for k, v in sums.items()]
    out.append('loadgen=%.2f' % (usage.ru_utime + usage.ru_stime))
    out.append('wall=%.2f' % (t1 - t0))
    out.append('machine=%.2f' % ((busy1 - busy0) / TICK))
    sys.stdout.flush()
    print('CPU ' + ' '.join(out))
    sys.exit(rc)


if __name__ == '__main__':
    main()
