#!/usr/bin/env bash
# Installs the Debian packages the harness runs against, only those missing,
# so a second run costs nothing. CI runs as root on a fresh machine.
set -euo pipefail
# chromium-headless-shell: the report test opens the HTML page in it.
# qemu-system-x86 and linux-image-cloud-amd64: the virtualized runtime's
# hypervisor and guest kernel. docker-registry and skopeo: the CRI server's
# image tests push the test image to a loopback registry and pull it back.
pkgs=(runc crun runsc podman containerd chromium-headless-shell qemu-system-x86 linux-image-cloud-amd64 docker-registry skopeo)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
