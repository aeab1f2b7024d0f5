#!/usr/bin/env bash
# Build a local stand-in for the Dockerfile's base image (python:3.13-slim-trixie) without a
# container registry: debootstrap a minimal Debian 13 "trixie" (its python3 is 3.13) from the
# Debian archive, strip the caches, and import the tree as an image under the given tag.
#
# Usage: scripts/build-base-image.sh TAG
#   DEBIAN_MIRROR   Debian archive to debootstrap from (default http://deb.debian.org/debian)
#   DEBIAN_SUITE    suite (default trixie)
# Needs root, debootstrap and podman (configured by the caller: CONTAINERS_CONF and
# CONTAINERS_STORAGE_CONF point podman at its own storage).
#
# The result has what the Dockerfile relies on in the official image: python3 (3.13) with
# venv and ensurepip, `python` on PATH, CA certificates, LANG=C.UTF-8, no compiler.
set -euo pipefail

tag=${1:?usage: $0 TAG}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${DEBIAN_SUITE:-trixie}

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/ctxfy-base.XXXXXX")
cleanup() { rm -rf --one-file-system "$rootfs"; }
trap cleanup EXIT

debootstrap --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -20 "$rootfs.log" >&2
    rm -f "$rootfs.log"
    exit 1
}
rm -f "$rootfs.log"

# What an image does not need: package caches and lists, manuals, logs. The packages'
# copyright files stay (licence compliance).
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/tmp/* "$rootfs"/root/.cache
find "$rootfs/usr/share/doc" ! -type d ! -name copyright -delete
version=$(chroot "$rootfs" python3 --version)

tar --numeric-owner --xattrs -C "$rootfs" -c . | podman import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --message "debootstrap --variant=minbase $suite + python3 python3-venv ca-certificates" \
    - "$tag" >/dev/null
echo "$tag: $version on Debian $suite"
