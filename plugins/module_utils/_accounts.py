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


def shell_environment(values):
    """The ``environment`` option as the users' shells would have it: names and values as
    strings, a variable set to null unset (not the string ``None``)."""
    return dict((str(name), str(value)) for name, value in values.items() if value is not None)


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
    def all(cls, names=None, warn=None):
        """Every account with an existing home (or the named ones), each home once."""
        return users_with_homes(names, warn)

    @property
    def logs_in(self):
        """A person's account (a real shell): a missing home is news, not the norm."""
        return bool(self.shell) and posixpath.basename(self.shell) not in NO_LOGIN_SHELLS


def _user(entry):
    return User(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, entry.pw_shell)


def passwd_users(names=None, warn=None):
    """Every passwd user (first entry per name), or the named ones; unknown names are warned about."""
    if not names:
        seen = {}
        for entry in pwd.getpwall():
            seen.setdefault(entry.pw_name, _user(entry))
        return list(seen.values())
    users = []
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            if warn is not None:
                warn("user %s is not in the passwd database; skipped" % name)
            continue
        users.append(_user(entry))
    return users


def users_with_homes(names=None, warn=None):
    """Passwd users whose home directory exists, each home once (system accounts share ``/``)."""
    return with_homes(passwd_users(names, warn))


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
