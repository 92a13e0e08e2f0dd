"""The ONNX deployment benchmark as a script: ``python benchmarks/bench_onnx.py CHECKPOINT
[lstmkit bench-onnx flags]``.

Equivalent to ``lstmkit bench-onnx``; see ``lstmkit bench-onnx --help`` and
lstmkit/experiments/onnx_charlm.py.
"""

import sys

from lstmkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench-onnx", *sys.argv[1:]]))
