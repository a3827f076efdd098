"""uwsgi-fleetctl, the operator tool of a uwsgi_fleet node (installed by Chef).

The command (/usr/local/sbin/uwsgi-fleetctl) is a launcher for cli.main; the
modules, each one job:

  manifest         find, load and check a fleet's manifest (fleet.schema.json)
  common           log, wait, run a command, a process's children
  protocol         the uwsgi protocol client: ask an instance directly
  process_manager  drive an instance with the commands the manifest carries
  untrusted        open files in directories the app user controls, as root
  converge         what Chef calls: apply, restart, reload, wait
  nginx            what Chef calls about nginx: nginx-test, nginx-reload
  reports          what the operator reads: health, outcomes, summary,
                   forwarder, tail
  cli              the command line
"""
