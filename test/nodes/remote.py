"""Talking to a node from the host: commands, files and converges over SSH.

Tests and tools reach a node the way an operator reaches any machine: SSH
with the nodes' key (settings.SSH_CONFIG), HTTP to its address.
"""
import io
import json
import os
import shlex
import shutil
import subprocess
import tarfile

import settings

CONVERGE_DIR = "/var/tmp/uwsgi_fleet-converge"


class CommandFailed(AssertionError):
    pass


def copy_cookbook(dest, source=settings.REPO):
    """A copy of the cookbook's parts (settings.COOKBOOK_PARTS) at dest: what Chef
    is given instead of the checkout, whose tests, bench and node_modules it
    would walk on every load."""
    os.makedirs(dest)
    for part in settings.COOKBOOK_PARTS:
        path = os.path.join(source, part)
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(dest, part), ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif os.path.exists(path):
            shutil.copy(path, os.path.join(dest, part))
    return dest


class Node:
    """A node at `address`, reached as root over SSH."""

    def __init__(self, address, name=None):
        self.address = address
        self.name = name or address

    @classmethod
    def from_env(cls):
        """The node Kitchen's shell verifier names in KITCHEN_HOSTNAME."""
        address = os.environ.get("KITCHEN_HOSTNAME")
        if not address:
            raise RuntimeError("KITCHEN_HOSTNAME is not set: run this through `kitchen verify`")
        return cls(address, os.environ.get("KITCHEN_INSTANCE"))

    def ssh(self, command):
        return ["ssh", "-F", settings.SSH_CONFIG, f"root@{self.address}", command]

    def run(self, command, check=True, timeout=900, input=None):
        """Run a shell command on the node: a CompletedProcess with text output."""
        result = subprocess.run(self.ssh(command), capture_output=True, text=True, timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise CommandFailed(f"on {self.name}: {command!r} exited {result.returncode}\n"
                                f"{result.stdout[-4000:]}\n{result.stderr[-3000:]}")
        return result

    def output(self, command, **kwargs):
        return self.run(command, **kwargs).stdout

    def read(self, path):
        return self.output(f"cat {shlex.quote(path)}")

    def exists(self, path):
        return self.run(f"test -e {shlex.quote(path)}", check=False).returncode == 0

    def read_tree(self, remote_dir):
        """{relative path: bytes} of every regular file under remote_dir, dot-files
        excluded (one tar over SSH)."""
        result = subprocess.run(self.ssh(f"tar -C {shlex.quote(remote_dir)} -cf - ."),
                                capture_output=True, timeout=600)
        if result.returncode != 0:
            raise CommandFailed(f"reading {self.name}:{remote_dir} failed: {result.stderr.decode()[-2000:]}")
        with tarfile.open(fileobj=io.BytesIO(result.stdout)) as tar:
            return {m.name[2:]: tar.extractfile(m).read() for m in tar.getmembers()
                    if m.isfile() and not os.path.basename(m.name).startswith(".")}

    def put_tree(self, local_dir, remote_dir, parts=("."), excludes=("__pycache__", "*.pyc")):
        """Copy `parts` of local_dir to remote_dir (replacing it) with tar over SSH."""
        tar = ["tar", "-C", local_dir] + [f"--exclude={e}" for e in excludes] + ["-cf", "-", *parts]
        packer = subprocess.Popen(tar, stdout=subprocess.PIPE)
        quoted = shlex.quote(remote_dir)
        unpack = subprocess.run(self.ssh(f"rm -rf {quoted} && mkdir -p {quoted} && tar -C {quoted} -xf -"),
                                stdin=packer.stdout, capture_output=True, text=True, timeout=300)
        packer.stdout.close()
        if packer.wait() != 0 or unpack.returncode != 0:
            raise CommandFailed(f"copying {local_dir} to {self.name}:{remote_dir} failed: {unpack.stderr}")

    def converge(self, attributes=None, run_list="recipe[uwsgi_fleet::default]", cookbook=settings.REPO,
                 extra_cookbooks=(), check=True, timeout=900):
        """chef-client --local-mode on the node, with `cookbook` as uwsgi_fleet."""
        cookbooks = f"{CONVERGE_DIR}/cookbooks"
        self.put_tree(cookbook, f"{cookbooks}/uwsgi_fleet",
                      [p for p in settings.COOKBOOK_PARTS if os.path.exists(os.path.join(cookbook, p))])
        for path in extra_cookbooks:
            self.put_tree(path, f"{cookbooks}/{os.path.basename(path)}")
        client_rb = (f"chef_repo_path '{CONVERGE_DIR}'\ncookbook_path ['{cookbooks}']\n"
                     "file_cache_path '/var/cache/uwsgi_fleet/chef-tests'\nchef_license 'accept-no-persist'\n")
        self.run(f"cat > {CONVERGE_DIR}/client.rb", input=client_rb)
        self.run(f"cat > {CONVERGE_DIR}/node.json", input=json.dumps(attributes or {}))
        return self.run(f"cd {CONVERGE_DIR} && CHEF_LICENSE=accept-no-persist {settings.CHEF_CLIENT} --local-mode "
                        f"--config client.rb -o {shlex.quote(run_list)} -j node.json --no-color",
                        check=check, timeout=timeout)

    def url(self, path="/", port=80):
        return f"http://{self.address}{'' if port == 80 else f':{port}'}{path}"

    def testinfra_host(self):
        import testinfra
        return testinfra.get_host(f"ssh://root@{self.address}", ssh_config=settings.SSH_CONFIG)
