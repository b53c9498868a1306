"""What the tests of test_relay_modes.py in tests/unit, tests/cli share."""

from __future__ import annotations

import os
import random

SIZE = 48 << 20
DATA = random.Random(8305).randbytes(SIZE)
HAS_SPLICE = hasattr(os, "splice")
