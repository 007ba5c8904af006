"""nbval runs the committed expectation notebooks on a fresh copy of the bundled example, in
static mode: their parameters cell reads the folders from these variables (the kernel inherits
them)."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from tests.conftest import copy_example

_tmp = Path(tempfile.mkdtemp(prefix="kit-nbval-"))
atexit.register(shutil.rmtree, _tmp, ignore_errors=True)
os.environ["KIT_NBVAL_PROJECT"] = str(copy_example(_tmp / "shop-api"))
os.environ["KIT_NBVAL_OUT"] = str(_tmp / "out")
