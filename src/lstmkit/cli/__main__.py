"""``python -m lstmkit.cli``, the same as ``lstmkit`` and ``python -m lstmkit``."""

import sys

from lstmkit.cli import main

sys.exit(main())
