"""Offline stand-in for the get-pip script that ansible-test downloads.

ansible-test bootstraps pip into every sanity-test virtual environment by running a
get-pip script it fetches from the internet, unless a copy already sits in its cache
(`~/.ansible/test/cache/get_pip_<version>.py`). sanity.sh installs this file there so the
bootstrap works without that download:

1. `ensurepip` puts the pip wheel bundled with the interpreter into the venv;
2. `python -m pip install <args>` then installs the exact pip version ansible-test asked for,
   through the machine's normal pip configuration (index, find-links, certificates).

`ensurepip` sets `PIP_CONFIG_FILE=/dev/null` in `os.environ` to keep user configuration out of
its own install, so step 2 must run with the environment saved *before* step 1; otherwise the
machine's pip configuration is silently ignored and the install fails.

get-pip understands `--no-setuptools`/`--no-wheel` (do not add those packages); pip does not,
and pip installs neither unless asked, so they are dropped.
"""

import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY_OPTIONS = frozenset(("--no-setuptools", "--no-wheel"))


def pip_install_args(argv):
    """Return get-pip's command-line arguments with the options pip itself would reject."""
    return [arg for arg in argv if arg not in GET_PIP_ONLY_OPTIONS]


def main():
    """Bootstrap pip from the bundled wheel, then install what ansible-test asked for."""
    environment = dict(os.environ)
    ensurepip.bootstrap(upgrade=True)
    command = [sys.executable, "-m", "pip", "install"] + pip_install_args(sys.argv[1:])
    sys.exit(subprocess.call(command, env=environment))


if __name__ == "__main__":
    main()
