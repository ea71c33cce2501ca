#!/bin/sh
# Install what the training scripts need from Debian (bookworm) packages.
#
# Debian's PyTorch 1.13 + OpenCV 4.6 are used on purpose: they are pinned by
# the distribution, need no network access beyond apt, and run on CPU only.
# mate-backgrounds adds nature photographs (up to 2560 px) used as foreground
# textures and backgrounds of the synthetic composites; fonts-dejavu-core
# gives the glyph shapes. Idempotent: rerunning only re-checks the packages.
set -eu

PACKAGES="python3-torch libopenblas0-openmp python3-opencv python3-pil python3-numpy mate-backgrounds fonts-dejavu-core"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086  # word splitting of the package list is intended
$SUDO apt-get install -y -q --no-install-recommends $PACKAGES

PY=/usr/bin/python3
"$PY" -c "import torch, cv2, PIL, numpy; print('torch', torch.__version__, '| opencv', cv2.__version__, '| pillow', PIL.__version__, '| numpy', numpy.__version__)"
echo "use this python for train/: $PY"
