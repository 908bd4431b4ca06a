# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's login accounts: whose homes hold conda config, environments, pip and uv caches."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import posixpath
import pwd

# Shells of accounts nobody logs in to; such accounts often name a home that was never made.
NO_LOGIN_SHELLS = ("nologin", "false", "sync", "shutdown", "halt")


class User(object):
    """A passwd entry: only what cache and config resolution need."""

    __slots__ = ("name", "uid", "gid", "home", "shell")

    def __init__(self, name, uid, gid, home, shell="/bin/sh"):
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home
        self.shell = shell

    @classmethod
    def all(cls):
        """Every account with an existing home, each home once."""
        return with_homes(passwd_users())

    @property
    def logs_in(self):
        """A person's account (a real shell): a missing home is news, not the norm."""
        return bool(self.shell) and posixpath.basename(self.shell) not in NO_LOGIN_SHELLS


def _user(entry):
    return User(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, entry.pw_shell)


def passwd_users():
    """Every passwd user, the first entry of each name."""
    seen = {}
    for entry in pwd.getpwall():
        seen.setdefault(entry.pw_name, _user(entry))
    return list(seen.values())


def passwd_user(name):
    """The passwd user *name*; KeyError when the database has no such name."""
    return _user(pwd.getpwnam(name))


def superuser():
    """The account of uid 0."""
    return _user(pwd.getpwuid(0))


def with_homes(accounts):
    """Those of *accounts* whose home directory exists, each home once, ``/`` left out."""
    users, seen = [], set()
    for user in accounts:
        home = os.path.normpath(user.home or "/")
        if home in seen or home == "/" or not os.path.isdir(home):
            continue
        seen.add(home)
        users.append(user)
    return users
