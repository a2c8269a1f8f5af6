"""The role's apt repository configuration, run by real Ansible and read by real apt.

``roles/designate/tasks/apt_source.yml`` writes the sources list and installs the
repository's public key; here its paths point into a temp dir, so it runs without
root, and apt (with a private configuration) reads the signed repository through
exactly what the role wrote.  The full install through apt is in
test_upgrade_rollback.py (root and CI only).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import fixtures
from oslotest import base

from designate_dist.publish import publish
from tests.fixtures.publish import AptRoot, BuildsTestCase
from tests.fixtures.gnupg import GnupgHome
from tests.fixtures.release import ANSIBLE, BIN

PLAY = """- name: The designate-dist apt repository
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Apt source
      ansible.builtin.include_role:
        name: designate
        tasks_from: apt_source
"""


class TestAptSource(BuildsTestCase):
    publish_revisions = (1, 2)
    sign_with = "fingerprint"

    def setUp(self) -> None:
        super().setUp()
        (self.tmp / "etc" / "sources.list.d").mkdir(parents=True)  # as /etc/apt/sources.list.d is
        self.variables = {
            "designate_repo_url": f"file://{self.repo}",
            "designate_apt_key_file": str(self.repo / "signing-key.asc"),
            "designate_apt_keyring": str(self.tmp / "etc" / "keyrings" / "designate-dist.asc"),
            "designate_apt_list_file": str(self.tmp / "etc" / "sources.list.d" / "designate-dist.list")}

    def play(self, playbook: str, **variables) -> tuple[int, dict, str]:
        if playbook == "apt_source":
            path = self.tmp / "apt_source.yml"
            path.write_text(PLAY)
            playbook = str(path)
        extra = self.tmp / "vars.json"
        extra.write_text(json.dumps({**self.variables, **variables}))
        env = {**os.environ, "ANSIBLE_HOME": str(self.tmp / "ansible-home"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_ROLES_PATH": str(ANSIBLE / "roles"),
               "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                               "-e", "designate_hosts=localhost", "-e", f"@{extra}", playbook],
                              cwd=ANSIBLE, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        recap = re.search(r"^localhost\s*:\s*(.*)$", proc.stdout, re.M)
        stats = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))} if recap else {}
        return proc.returncode, stats, proc.stdout

    def test_apt_reads_the_signed_repository_through_what_the_role_wrote(self) -> None:
        code, stats, output = self.play("apt_source")
        self.assertEqual(0, code, output[-3000:])
        keyring = Path(self.variables["designate_apt_keyring"])
        listing = Path(self.variables["designate_apt_list_file"])
        self.assertEqual(f"deb [signed-by={keyring}] file://{self.repo} ./\n", listing.read_text())
        self.assertEqual((self.repo / "signing-key.asc").read_bytes(), keyring.read_bytes())
        self.assertEqual(0o644, keyring.stat().st_mode & 0o777)
        apt = AptRoot(self.tmp / "apt", None, sources=listing)
        self.assertNotIn("W:", apt.run("apt-get", "update"))
        self.assertIn("1:1.0.0-2", apt.run("apt-cache", "madison", "designate"))
        code, stats, output = self.play("apt_source")
        self.assertEqual((0, 0), (code, stats.get("changed")), output[-3000:])

    def test_apt_refuses_the_repository_when_the_key_is_not_its_own(self) -> None:
        other = GnupgHome("someone else <else@example.org>")
        self.addCleanup(other.close)
        key = self.tmp / "other.asc"
        key.write_bytes(other.export())
        code, _, output = self.play("apt_source", designate_apt_key_file=str(key))
        self.assertEqual(0, code, output[-3000:])
        apt = AptRoot(self.tmp / "apt", None, sources=Path(self.variables["designate_apt_list_file"]))
        self.assertIn("NO_PUBKEY", apt.refused())

    def test_trusted_is_an_explicit_opt_in(self) -> None:
        code, _, output = self.play("apt_source", designate_apt_key_file="", designate_apt_trusted=True)
        self.assertEqual(0, code, output[-3000:])
        self.assertEqual(f"deb [trusted=yes] file://{self.repo} ./\n",
                         Path(self.variables["designate_apt_list_file"]).read_text())
        self.assertFalse(Path(self.variables["designate_apt_keyring"]).exists())

    def test_the_deb_method_without_a_key_is_refused_before_anything_is_done(self) -> None:
        for variables, message in (
                ({"designate_apt_key_file": ""}, "the deb method needs designate_apt_key_file"),
                ({"designate_apt_trusted": True},
                 "set only one of designate_apt_key_file and designate_apt_trusted")):
            code, stats, output = self.play("upgrade.yml", designate_version="1.0.0.post1",
                                            designate_install_method="deb", **variables)
            self.assertNotEqual(0, code)
            self.assertIn(message, output)
            self.assertEqual((1, 0), (stats["failed"], stats["changed"]), output[-3000:])
            self.assertFalse(Path(self.variables["designate_apt_list_file"]).exists())
