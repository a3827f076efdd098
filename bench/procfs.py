"""Process and machine facts from /proc, in one place for the bench harness and
the tests: process groups, children, command lines, CPU time, RSS/PSS."""
import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat(pid):
    """{pid, ppid, pgid, start (ticks since boot), state, user_s, system_s, cpu_s
    (their sum)} or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    user_s, system_s = int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK
    return {"pid": int(pid), "state": fields[0], "ppid": int(fields[1]), "pgid": int(fields[2]),
            "user_s": user_s, "system_s": system_s, "cpu_s": user_s + system_s, "start": int(fields[19])}


def processes():
    """stat() of every live (non-zombie) process."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = stat(entry)
            if st and st["state"] != "Z":
                out.append(st)
    return out


def group_pids(pgid):
    """Live processes of a process group."""
    return sorted(p["pid"] for p in processes() if p["pgid"] == pgid)


def children(pid):
    """Live direct children of pid."""
    return sorted(p["pid"] for p in processes() if p["ppid"] == pid)


def cmdline(pid):
    """argv of pid ([] when it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode("utf-8", "replace").split("\0")[:-1]
    except OSError:
        return []


def pids_with_arg(text):
    """Processes whose command line contains `text` (in any argument)."""
    return sorted(p["pid"] for p in processes() if any(text in a for a in cmdline(p["pid"])))


def cpu_seconds(pids):
    """utime + stime (seconds) of the given processes, all threads."""
    return sum(st["cpu_s"] for st in map(stat, pids) if st)


def memory_of(pids):
    """Sum of VmRSS and Pss (kB) over pids (/proc/<pid>/status, smaps_rollup)."""
    out = {"processes": len(pids), "rss_kb": 0, "pss_kb": 0}
    for pid in pids:
        for name, key, field in (("status", "VmRSS:", "rss_kb"), ("smaps_rollup", "Pss:", "pss_kb")):
            try:
                with open(f"/proc/{pid}/{name}") as f:
                    out[field] += sum(int(line.split()[1]) for line in f if line.startswith(key))
            except OSError:
                pass
    return out


def machine_ticks():
    """(busy, total, irq) CPU ticks of the whole machine since boot: busy excludes
    idle, iowait and steal (the hypervisor running someone else); irq is interrupt
    and softirq time (loopback networking, block I/O completions), which no
    process is charged for."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]    # user nice system idle iowait irq softirq steal
    return sum(v) - v[3] - v[4] - v[7], sum(v), v[5] + v[6]
