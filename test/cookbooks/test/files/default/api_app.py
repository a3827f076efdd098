"""A WSGI app that is not the store: what the api fleet of the two_fleets
recipe runs. It says which instance answered and which fleet it belongs to."""
import json
import os


def application(environ, start_response):
    body = json.dumps({"app": "api", "instance": os.environ.get("UWSGI_FLEET_INSTANCE"),
                       "path": environ.get("PATH_INFO")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                              ("X-Fleet-Instance", os.environ.get("UWSGI_FLEET_INSTANCE", ""))])
    return [body]
