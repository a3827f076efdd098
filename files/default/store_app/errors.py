"""The one exception type that turns into a JSON error response."""


class HttpError(Exception):
    """A client-visible failure: status code, short reason, extra headers.

    Raised anywhere below the WSGI layer; wsgi.py renders it as
    ``{"error": reason}`` so every 4xx (and deliberate 5xx) looks the same.
    ``discard`` names why the data was dropped, for the outcome counters
    (outcomes.py); without it the status code decides.
    """

    def __init__(self, status, reason, headers=(), extra=None, discard=None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = list(headers)
        # Optional additional JSON fields (e.g. retry_after on a 429).
        self.extra = extra or {}
        self.discard = discard
