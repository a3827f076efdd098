"""Sentry protocol details shared by the endpoints, as Relay implements them.

* CORS (relay-server/src/middlewares/cors.rs): any origin; POST; the request
  headers SDKs send; the response headers a browser SDK must be able to read
  (X-Sentry-Rate-Limits, Retry-After, X-Sentry-Error); preflights cached an
  hour (cors.json).
* X-Sentry-Rate-Limits (relay-server/src/utils/rate_limits.rs,
  format_rate_limits): ``retry_after:categories:scope:reason_code``,
  categories separated by ``;``, several limits by ``, ``.
* Data categories of envelope item types (relay-base-schema DataCategory).
"""

import json
import os



def _data(name):
    """One of the app's data files, which libraries/nginx.rb reads too."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name)) as f:
        return json.load(f)


# Relay's CORS policy, in a data file nginx's own error pages read too
# (libraries/nginx.rb), so the two can never expose different headers.
CORS = _data("cors.json")

ALLOW_HEADERS = ", ".join(CORS["allow_headers"])
EXPOSE_HEADERS = ", ".join(CORS["expose_headers"])

# On every response of the intake endpoints, errors included: without them a
# browser hides the status and headers of a 429 from the SDK.
CORS_HEADERS = (("Access-Control-Allow-Origin", CORS["allow_origin"]),
                ("Access-Control-Expose-Headers", EXPOSE_HEADERS))
PREFLIGHT_HEADERS = (("Access-Control-Allow-Origin", CORS["allow_origin"]),
                     ("Access-Control-Allow-Methods", ", ".join(CORS["allow_methods"])),
                     ("Access-Control-Allow-Headers", ALLOW_HEADERS),
                     ("Access-Control-Max-Age", str(CORS["max_age"])))

# The project quota covers the items this store keeps: Sentry's error
# categories for events, and transactions.
QUOTA_CATEGORIES = ("default", "error", "transaction")
QUOTA_REASON = "project_quota"

ITEM_CATEGORIES = {
    "event": "error", "transaction": "transaction",
    "security": "security", "raw_security": "security", "nel": "security",
    "attachment": "attachment", "session": "session", "sessions": "session",
    "profile": "profile", "profile_chunk": "profile_chunk",
    "replay_event": "replay", "replay_recording": "replay",
    "replay_video": "replay", "check_in": "monitor", "span": "span",
    "log": "log_item", "otel_log": "log_item", "statsd": "metric_bucket",
    "metric_buckets": "metric_bucket", "user_report": "user_report_v2",
    "feedback": "user_report_v2",
    # Not a Sentry data category (Relay turns it into outcomes itself);
    # named as such so operators see the SDKs' reports arrive.
    "client_report": "client_report",
}


def item_category(item_type):
    return ITEM_CATEGORIES.get(item_type, "unknown")


def rate_limits_header(retry_after):
    """X-Sentry-Rate-Limits for this store's one (project) quota."""
    return "%d:%s:project:%s" % (retry_after, ";".join(QUOTA_CATEGORIES),
                                 QUOTA_REASON)


# The answer to a request shed for overload (overload.py), the same as
# nginx's when no instance can take a request: both read shed.json
# (libraries/nginx.rb too; test_shed_answer.py compares them): 503 as Relay
# answers with its queue full, and a rate limit without categories, which
# pauses every category for Retry-After seconds in sentry-python and the
# JavaScript SDKs.  The renderer adds X-Sentry-Error (the reason) and the
# CORS headers.
_SHED = _data("shed.json")
SHED_STATUS = _SHED["status"]
SHED_RETRY_AFTER = _SHED["retry_after"]
SHED_REASON = _SHED["reason"]
SHED_HEADERS = (("Retry-After", str(SHED_RETRY_AFTER)),
                ("X-Sentry-Rate-Limits",
                 "%d::organization:%s" % (SHED_RETRY_AFTER, SHED_REASON)))
