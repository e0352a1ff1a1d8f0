# Shared by scripts/serve and scripts/test: install what is missing, nothing more.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${DOCKYARD_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
export DEBIAN_FRONTEND=noninteractive

_apt_updated=0
ensure_apt() {  # ensure_apt PKG... : apt-get install the packages that are not installed yet
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "# installing with apt-get: ${missing[*]}" >&2
  if [ "$_apt_updated" = 0 ]; then apt-get update -qq >&2; _apt_updated=1; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_venv() {  # ensure_venv EXTRAS : a venv with dockyard installed (editable) and its deps
  local extras=${1:-}
  if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then ensure_apt python3-venv; fi
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  local stamp="$VENV/.dockyard-installed$extras"
  local want
  want=$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "# installing Python dependencies into $VENV" >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT$extras" >&2
    echo "$want" > "$stamp"
  fi
}

ensure_build_user() {  # the unprivileged user builds run as (builds.run_as: auto), with subordinate ids for rootless buildah
  if ! id dockyard-builder >/dev/null 2>&1; then
    useradd --create-home --shell /usr/sbin/nologin dockyard-builder
  fi
  for f in /etc/subuid /etc/subgid; do  # useradd adds them where login.defs says so; else the next free range
    touch "$f"
    grep -q '^dockyard-builder:' "$f" ||
      awk -F: 'BEGIN{n=100000} NF==3 && $2+$3>n {n=$2+$3} END{print "dockyard-builder:" n ":65536"}' "$f" >> "$f"
  done
}
