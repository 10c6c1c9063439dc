#!/usr/bin/env bash
# Install the minimal Debian/Ubuntu packages that Open3D (the `viz` extra) needs to render here.
#
#   scripts/install_viz_deps.sh            headless rendering (selfpose3d view --render, tests)
#   scripts/install_viz_deps.sh --window   + the interactive window (Open3D GUI: Vulkan on Mesa)
#   scripts/install_viz_deps.sh --xvfb     + a virtual X display (xvfb-run) for the window on a server
#   scripts/install_viz_deps.sh --strict   exit 1 when packages are missing and cannot be installed
#
# As root it installs what is missing (apt-get, no recommends); otherwise it prints the exact
# command to run. Nothing is installed when everything is present. Without these packages the
# viewer still renders with its software (cv2) backend and says so.
set -euo pipefail

# import open3d: libegl1 libgl1 libusb-1.0-0; EGL offscreen rendering on the CPU: Mesa's EGL
# vendor library and its llvmpipe driver.
PKGS=(libegl1 libgl1 libusb-1.0-0 libegl-mesa0 libgl1-mesa-dri)
STRICT=0
for arg in "$@"; do
  case "$arg" in
    --window) PKGS+=(libvulkan1 mesa-vulkan-drivers) ;;
    --xvfb) PKGS+=(xvfb xauth) ;;
    --strict) STRICT=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install_viz_deps.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install_viz_deps.sh: not a Debian/Ubuntu system; install the equivalents of: ${PKGS[*]}" >&2
  exit $STRICT
fi

missing=()
for p in "${PKGS[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "viz system packages present: ${PKGS[*]}"
  exit 0
fi

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  exit 0
fi

echo "viz: missing system packages: ${missing[*]}" >&2
echo "run as root:  sudo sh -c '$cmd'" >&2
echo "(until then the viewer renders with its software backend)" >&2
exit $STRICT
