"""An open-loop store load (loadgen) in a background thread for as long as a
`with` block runs: the one helper every test suite uses for "under load"
(the reliability tests, the cluster, the upgrade suite's hooks)."""
import threading
import time

import loadgen


class BackgroundLoad:
    """`rate` store requests a second to host:port for project `project_id`,
    from `payloads` (loadgen.make_payloads), for at most `max_seconds`. The
    load runs `settle` seconds before the block starts (it is at its rate when
    the action begins) and after it ends (the action's tail is under load too)."""

    def __init__(self, host, port, project_id, public_key, payloads, rate=40, max_seconds=300, settle=1.0):
        self.generator = loadgen.LoadGenerator(host, port, project_id, public_key, payloads)
        self.project_id, self.rate, self.max_seconds, self.settle = project_id, rate, max_seconds, settle
        self.stop = threading.Event()
        self.run = None
        self.thread = None

    def __enter__(self):
        def drive():
            self.run = self.generator.run(self.rate, self.max_seconds, stop=self.stop)
        self.thread = threading.Thread(target=drive, daemon=True)
        self.thread.start()
        time.sleep(self.settle)
        return self

    def __exit__(self, *exc):
        time.sleep(self.settle)
        self.stop.set()
        self.thread.join(timeout=120)
        return False

    def counts(self):
        return self.run.counts()

    def failures(self):
        """The results that were not 2xx (connection errors included)."""
        return [r for r in self.run.results if not 200 <= r.status < 300]

    def accepted_event_ids(self):
        return self.run.accepted_event_ids()
