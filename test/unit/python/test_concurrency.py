"""Thread safety: uWSGI runs the app in several threads of one process."""

import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from store_app import wsgi
from store_app.quota import LocalQuota
from support import config_dict, event_bytes, limited, make_app, store

THREADS = 16


def run_threads(fn, calls_per_thread):
    """Run fn(thread_no, call_no) from THREADS threads started together."""
    barrier = threading.Barrier(THREADS)

    def worker(t):
        barrier.wait()
        return [fn(t, i) for i in range(calls_per_thread)]

    with ThreadPoolExecutor(THREADS) as pool:
        return [r for rs in pool.map(worker, range(THREADS)) for r in rs]


def test_concurrent_distinct_and_duplicate_events(tmp_path):
    app = make_app(tmp_path)
    shared_ids = [uuid.uuid4().hex for _ in range(8)]
    sent = {}  # event_id -> set of payloads sent under that id
    lock = threading.Lock()

    def one(t, i):
        # Every third call reuses a shared id with a thread-specific body.
        event_id = shared_ids[i % 8] if i % 3 == 0 else uuid.uuid4().hex
        data = event_bytes(event_id, message="t%d-%d" % (t, i))
        with lock:
            sent.setdefault(event_id, set()).add(data)
        resp = store(app, data)
        return resp.status, resp.json.get("id")

    results = run_threads(one, 30)
    assert {status for status, _ in results} == {200}
    acked = {event_id for _, event_id in results}
    project_dir = tmp_path / "spool" / "1"
    names = os.listdir(project_dir)
    assert not [n for n in names if n.startswith(".")]  # no temp leftovers
    assert sorted(names) == sorted(e + ".json" for e in acked)
    for name in names:
        data = (project_dir / name).read_bytes()
        event_id = name[:-5]
        # Whole, un-interleaved: exactly one of the bodies sent for that id.
        assert data in sent[event_id]
        assert json.loads(data)["event_id"] == event_id


def test_concurrent_quota_never_exceeds_burst_plus_rate(tmp_path):
    # The whole limit, not a share of it: instances no longer divide it.
    rate, burst = 20.0, 10.0
    t0 = time.monotonic()  # before the bucket exists, so the bound is safe
    app = make_app(tmp_path, projects={"1": limited(rate, burst)})

    def one(t, i):
        resp = store(app, event_bytes())
        return resp.status, resp.headers.get("retry-after")

    results = run_threads(one, 25)
    elapsed = time.monotonic() - t0
    ok = sum(1 for status, _ in results if status == 200)
    refused = [retry for status, retry in results if status == 429]
    assert ok + len(refused) == len(results)
    assert burst <= ok <= burst + rate * elapsed, (ok, elapsed)
    assert refused and all(int(r) >= 1 for r in refused)
    assert len(os.listdir(tmp_path / "spool" / "1")) == ok


def _yielding(clock):
    """``clock`` that releases the GIL when read, in the middle of the
    bucket's read-modify-write: a missing lock reliably shows up as extra
    successes."""
    def read():
        time.sleep(0)
        return clock()
    return read


def test_local_bucket_exact_under_contention(tmp_path):
    # Frozen clock: no refill, so exactly `burst` acquisitions may succeed
    # however the 16 threads interleave.
    bucket = LocalQuota(str(tmp_path / "q"), clock=_yielding(lambda: 7.0))
    results = run_threads(lambda t, i: bucket.check("1", 5.0, 100.0), 20)
    assert sum(1 for wait in results if wait == 0.0) == 100


def test_local_bucket_refill_and_wait(tmp_path):
    now = [0.0]
    bucket = LocalQuota(str(tmp_path / "q"), clock=lambda: now[0])
    assert [bucket.check("1", 2.0, 3.0) for _ in range(4)] == [0, 0, 0, 0.5]
    now[0] = 0.5
    assert bucket.check("1", 2.0, 3.0) == 0.0
    assert bucket.check("1", 2.0, 3.0) == 0.5  # has 0: half a second
    now[0] = 100.0                             # long idle: capped at burst
    assert [bucket.check("1", 2.0, 3.0) for _ in range(4)] == [0, 0, 0, 0.5]


def test_lazy_application_loads_config_once_under_contention(
        tmp_path, monkeypatch):
    from store_app import config
    path = tmp_path / "store_app.json"
    (tmp_path / "spool").mkdir()
    path.write_text(json.dumps(config_dict(tmp_path / "spool")))
    monkeypatch.setenv("STORE_APP_CONFIG", str(path))
    monkeypatch.setenv("UWSGI_FLEET_INSTANCE", "9001")
    loads = []
    real_load = config.load_config
    monkeypatch.setattr(config, "load_config",
                        lambda p: loads.append(p) or real_load(p))
    config.reset_config_cache()
    app = wsgi.LazyApp()
    try:
        results = run_threads(lambda t, i: store(app, event_bytes()).status, 3)
    finally:
        config.reset_config_cache()
    assert set(results) == {200}
    assert loads == [str(path)]
