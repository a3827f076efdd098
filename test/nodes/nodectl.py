#!/usr/bin/python3
"""nodectl: fresh Debian test nodes under systemd-nspawn (run as root).

  image [--release R]       build (or reuse) the release's cached base image; print its root
  create NAME [--init I] [--release R]
                            boot a fresh node (I: systemd, the default, or none;
                            R: debian-13, the default, or debian-12);
                            print its node.json (address, init, release, ...)
  destroy NAME...           power nodes off and remove every trace of them
  destroy-all               destroy every node (then the network is removed too)
  list                      the nodes, one per line: name address init release
  ssh NAME [COMMAND]        run COMMAND on the node (a shell without one)
  converge NAME [--json-attributes JSON] [--run-list R] [--cookbook DIR]
          [--extra-cookbook DIR]...
                            chef-client --local-mode on the node with this cookbook
                            (or DIR), and other cookbooks beside it

The Test Kitchen driver (test/kitchen) and the tests call these; see
documentation/testing.md, "Test nodes", for the settings (UWSGI_FLEET_NODE_CA, ...).
"""
import argparse
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import image  # noqa: E402
import machine  # noqa: E402
import remote  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(prog="nodectl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    releases = {"choices": list(machine.settings.RELEASES), "default": machine.settings.DEFAULT_RELEASE}
    sub.add_parser("image").add_argument("--release", **releases)
    create = sub.add_parser("create")
    create.add_argument("name")
    create.add_argument("--init", choices=("systemd", "none"), default="systemd")
    create.add_argument("--release", **releases)
    sub.add_parser("destroy").add_argument("names", nargs="+")
    sub.add_parser("destroy-all")
    sub.add_parser("list")
    ssh = sub.add_parser("ssh")
    ssh.add_argument("name")
    ssh.add_argument("remote_command", nargs=argparse.REMAINDER)
    converge = sub.add_parser("converge")
    converge.add_argument("name")
    converge.add_argument("--json-attributes", default="{}")
    converge.add_argument("--run-list", default="recipe[uwsgi_fleet::default]")
    converge.add_argument("--cookbook", default=remote.settings.REPO, help="the uwsgi_fleet cookbook to converge")
    converge.add_argument("--extra-cookbook", action="append", default=[], help="another cookbook to ship (repeatable)")
    args = parser.parse_args(argv)

    if os.geteuid() != 0:
        parser.error("nodes are containers: run as root")
    if args.command == "image":
        print(image.ensure(args.release))
    elif args.command == "create":
        print(json.dumps(machine.create(args.name, init=args.init, release=args.release)))
    elif args.command == "destroy":
        for name in args.names:
            machine.destroy(name)
    elif args.command == "destroy-all":
        for name in machine.names():
            machine.destroy(name)
    elif args.command == "list":
        for node in machine.all_nodes():
            print(node["name"], node.get("address", "?"), node.get("init", "?"), node.get("release", "?"))
    elif args.command == "ssh":
        node = machine.load(args.name)
        os.execvp("ssh", remote.Node(node["address"]).ssh(" ".join(args.remote_command))[:-1]
                  + ([" ".join(args.remote_command)] if args.remote_command else []))
    elif args.command == "converge":
        node = remote.Node(machine.load(args.name)["address"], args.name)
        result = node.converge(json.loads(args.json_attributes), run_list=args.run_list, cookbook=args.cookbook,
                               extra_cookbooks=args.extra_cookbook, check=False)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
