"""``python -m lstmkit`` runs the ``lstmkit`` command."""

import sys

from lstmkit.cli import main

sys.exit(main())
