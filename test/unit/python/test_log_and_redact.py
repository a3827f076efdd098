"""Secrets stay out of logs and status files; repeated lines are held back."""

import pytest

from store_app import log, redisconn


@pytest.mark.parametrize("url,shown", [
    ("redis://:s3cret@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"),
    ("redis://app:s3cret@redis.internal:6380/2",
     "redis://app:***@redis.internal:6380/2"),
    ("redis://10.0.0.5:6379/0", "redis://10.0.0.5:6379/0"),
    ("redis://10.0.0.5/0?password=s3cret", "redis://10.0.0.5/0"),
    ("unix://:s3cret@/run/redis/redis.sock?db=1",
     "unix://:***@/run/redis/redis.sock"),
])
def test_redact_hides_the_password(url, shown):
    assert redisconn.redact(url) == shown
    assert "s3cret" not in redisconn.redact(url)


def test_scrub_masks_the_password_inside_a_message():
    url = "redis://:s3cret@h:1/0"
    assert redisconn.scrub("AUTH s3cret failed", url) == "AUTH *** failed"
    assert redisconn.scrub("refused", "redis://h:1/0") == "refused"


def test_throttled_writes_one_line_per_interval_and_counts_the_rest():
    lines, now = [], [0.0]
    say = log.Throttled(10.0, clock=lambda: now[0], write=lines.append)
    assert [say("a%d" % i) for i in range(3)] == [True, False, False]
    now[0] = 9.9
    assert say("b") is False
    now[0] = 10.0
    assert say("c") is True
    now[0] = 30.0
    say("d")
    assert lines == ["a0", "c (3 similar line(s) held back)", "d"]
