"""What tests/unit/test_relay_modes.py and tests/cli/test_relay_modes.py share."""

from __future__ import annotations

import os
import random

SIZE = 48 << 20
DATA = random.Random(8305).randbytes(SIZE)
HAS_SPLICE = hasattr(os, "splice")
