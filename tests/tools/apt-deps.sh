#!/usr/bin/env bash
# Debian packages the test fleet and the gates need; installs only what is missing.
set -euo pipefail
# podman, runc: the podman molecule scenario (crun refuses cgroup v1 hybrid hosts, runc does not).
# acl: getfacl reads back the default ACLs the shared_cache module writes as xattrs.
# systemd: systemd-analyze checks the cache_schedule role's units (the test hosts do not run systemd).
# xfsprogs: an XFS image with reflink=1 on a loop device, where rattler's reflinked caches are tested.
pkgs=(mmdebstrap acl uidmap openssh-client e2fsprogs util-linux iproute2 rsync sshpass shellcheck chromium systemd podman runc xfsprogs)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# podman as the podman scenario is tested: with its recommended helpers (network backends, init).
if [[ " ${missing[*]} " == *" podman "* ]]; then
  apt-get install -y -qq podman
fi
