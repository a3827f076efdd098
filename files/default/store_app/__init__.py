"""Sentry-compatible event intake ("store" endpoint) served by uWSGI.

uWSGI loads ``store_app.wsgi:application`` (one process, several threads,
``--lazy-apps``).  Endpoints:

* ``GET|HEAD /_health`` -> 200 ``{"status": "ok", "instance": ...}``
* ``POST /api/<project_id>/store/``    one JSON event (Sentry SDK 1.x)
* ``POST /api/<project_id>/envelope/`` an envelope (Sentry SDK 2.x)

Accepted events are durably spooled to
``<spool_dir>/<project_id>/<event_id>.json`` before the 200 is sent.
Every response carries ``X-Fleet-Instance`` (from ``UWSGI_FLEET_INSTANCE``, which the fleet sets).
The configuration file is named by ``STORE_APP_CONFIG`` (see config.py).
"""
