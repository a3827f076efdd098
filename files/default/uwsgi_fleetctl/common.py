"""What every command of the tool uses: its log line, waiting, running a
command, and a process's children."""
import os
import subprocess
import time


def log(message):
    print(f"uwsgi-fleetctl: {message}", flush=True)


def wait_until(predicate, timeout, what, interval=0.1):
    """Poll predicate until true; raise with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"uwsgi-fleetctl: timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def run(*command, check=True):
    """Run ``command`` (no shell); its output, stdout and stderr together."""
    result = subprocess.run(command, capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if check and result.returncode != 0:
        raise SystemExit(f"uwsgi-fleetctl: {' '.join(command)} failed: {output}")
    return output


def children(pid):
    """PIDs whose parent is pid (read from /proc)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids
