"""What a host carries besides the base image: fixture users and one conda layout.

The layouts themselves come from the fixture builder (``condafab``); this module only maps a
layout name to a call into it, plus ``bare`` — a host with users but no conda at all, the case
every module must also get right.
"""

from pathlib import Path

from testfleet.accounts import FIXTURE_USERS, add_account

BARE = "bare"
CONDA_LAYOUTS = ("single_root", "multi_user", "two_installs", "relocated_pkgs", "softlinked_env")
NAMES = (BARE,) + CONDA_LAYOUTS
# Asked for by name only, never dealt round-robin: one installation whose cache is big enough
# for the facts to size it with forked walkers (condafab's scalable installation, kept small).
BIG_CACHE = "big_cache"
BIG_CACHE_PACKAGES = 160
# Also by name only: micromamba without conda (condafab's ``micromamba`` layout).
MICROMAMBA = "micromamba"
BY_NAME = (BIG_CACHE, MICROMAMBA)


def validate(names):
    unknown = sorted(set(names) - set(NAMES) - set(BY_NAME))
    if unknown:
        raise ValueError("unknown layout(s) {0}; known: {1}".format(
            ", ".join(unknown), ", ".join(NAMES + BY_NAME)))
    return list(names)


def populate(root, layout, seed):
    """Create the fixture users in the tree at *root*, then build *layout* there.

    Returns the builder's Manifest (None for ``bare``).
    """
    for account in FIXTURE_USERS:
        add_account(root, account)
    if layout == BARE:
        return None
    # Imported here, not at the top: a bare fleet must not depend on the fixture builder.
    from condafab import User
    from condafab.layouts import LAYOUTS

    users = [User(*account) for account in FIXTURE_USERS]
    if layout == BIG_CACHE:
        from condafab.scale import build

        return build(Path(root), seed, packages=BIG_CACHE_PACKAGES, files=20, envs=4, users=users)
    return LAYOUTS[layout](Path(root), seed, users)
