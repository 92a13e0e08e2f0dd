"""The speed benchmark as a script: ``python benchmarks/bench.py [lstmkit bench flags]``.

Equivalent to ``lstmkit bench``; see ``lstmkit bench --help`` and lstmkit/bench.py.
"""

import sys

from lstmkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
