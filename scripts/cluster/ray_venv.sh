#!/usr/bin/env bash
# Make an overlay environment with Ray for tests/cluster/test_ray.py, without changing the project's .venv:
#
#   bash scripts/cluster/ray_venv.sh [OVERLAY] [BASE]     # defaults: .venv/overlay-ray and .venv
#
# The `ray` extra (hydra-ray-launcher 1.2.2 -> ray[default] <3, cloudpickle <3, boto3) would downgrade, in the
# environment it is installed into, cloudpickle 3 -> 2.2.1, and with it joblib 1.6 -> 1.5.3 (joblib 1.6 needs
# cloudpickle >= 3) and python-dateutil -> 2.9 (botocore). So Ray goes into OVERLAY, a venv of the same Python
# whose site-packages come first and that then reads BASE's site-packages (seg, torch, hydra, ...) through a
# .pth file: `OVERLAY/bin/python -m seg.train ...` sees Ray and the downgraded packages, `.venv` is unchanged.
# Idempotent: an overlay that imports Ray and the launcher is kept as it is.
set -euo pipefail

OVERLAY="${1:-.venv/overlay-ray}"
BASE="${2:-.venv}"
# what the `ray` extra of pyproject.toml resolves to; the same pins as pyproject.toml's [ray] line
RAY_REQS=("hydra-ray-launcher==1.2.2" "ray[default]>=2.9,<3" "joblib<1.6")

say() { printf '[ray_venv] %s\n' "$*"; }

BASE_PY="$BASE/bin/python"
[[ -x $BASE_PY ]] || { echo "[ray_venv] error: no $BASE_PY; run make install first" >&2; exit 1; }
if [[ -x $OVERLAY/bin/python ]] &&
    "$OVERLAY/bin/python" -c "import ray, hydra_plugins.hydra_ray_launcher.ray_launcher, seg" 2>/dev/null; then
    say "$OVERLAY has ray $("$OVERLAY/bin/python" -c 'import ray; print(ray.__version__)')"
    exit 0
fi

# the interpreter BASE was made from (pyvenv.cfg's `executable`), so that BASE's compiled packages load
BASE_SITE="$("$BASE_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
REAL_PY="$("$BASE_PY" -c 'import sys; print(sys._base_executable)')"
say "creating $OVERLAY (python $REAL_PY) over $BASE_SITE"
"$REAL_PY" -m venv --clear "$OVERLAY"
OVERLAY_SITE="$("$OVERLAY/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# a .pth line that starts with `import` is run at start-up: BASE's site-packages go after the overlay's own,
# with their .pth files (the editable install of seg) processed
printf 'import site; site.addsitedir(%s)\n' "'$(realpath "$BASE_SITE")'" >"$OVERLAY_SITE/zz-base-venv.pth"

# pip sees BASE's packages as installed; those that must change are installed into the overlay
# ("Not uninstalling ... outside environment" is expected)
say "installing ${RAY_REQS[*]} into $OVERLAY"
"$OVERLAY/bin/python" -m pip install --quiet --disable-pip-version-check "${RAY_REQS[@]}" 2>&1 |
    grep -v -e "outside environment" -e "^WARNING: Location" || true
"$OVERLAY/bin/python" -c "import ray, hydra_plugins.hydra_ray_launcher.ray_launcher, seg" ||
    { echo "[ray_venv] error: ray or its launcher does not import in $OVERLAY" >&2; exit 1; }
say "$OVERLAY: ray $("$OVERLAY/bin/python" -c 'import ray; print(ray.__version__)'), changed against $BASE:"
"$OVERLAY/bin/python" -m pip list --path "$OVERLAY_SITE" --format=freeze 2>/dev/null |
    grep -i -E '^(ray|hydra-ray-launcher|cloudpickle|joblib|python-dateutil)=' | sed 's/^/    /'
