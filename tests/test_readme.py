"""The README's quickstart runs as written, and its shape comments are true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_quickstart_runs(tmp_path: Path) -> None:
    code = re.search(r"## Quickstart\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert code is not None, "README has no quickstart block"
    script = tmp_path / "quickstart.py"
    checks = (
        "\nassert tuple(output.shape) == (4, 7, 20), output.shape"
        "\nassert tuple(h_n.shape) == (2, 4, 20) and tuple(c_n.shape) == (2, 4, 20)"
        "\nassert isinstance(theirs, torch.nn.LSTM)"
        "\nassert tuple(h.shape) == (4, 20)"
        "\nassert {'weight_ci_l0', 'weight_cf_l0', 'weight_co_l0'} <= set(peephole.state_dict())\n"
    )
    script.write_text(code.group(1) + checks)
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def run_block(containing: str, checks: str, script: Path) -> None:
    """Runs the README's one Python block that contains ``containing``, then ``checks``, as a
    script in the script's folder, with warnings as errors."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, f"expected one README block with {containing!r}, found {len(found)}"
    script.write_text(found[0] + checks)
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=script.parent,
    )
    assert done.returncode == 0, done.stderr


def test_training_example_runs(tmp_path: Path) -> None:
    run_block("Trainer(", "\nassert result.solved, result\n", tmp_path / "train.py")
    assert (tmp_path / "runs" / "gap80" / "checkpoint.pt").is_file()


def test_one_call_training_example_runs(tmp_path: Path) -> None:
    script = tmp_path / "fit.py"
    run_block("= fit(", "\nassert result.metrics['accuracy'] > 0.9, result\n", script)
    assert list(tmp_path.iterdir()) == [script]  # nothing written beside it


def test_deploy_example_runs(tmp_path: Path) -> None:
    checks = (
        "\nassert report.operators == {'': 'LSTM'}, report.operators"
        "\nx = torch.randn(11, 3, 10)"
        "\nwith torch.no_grad():"
        "\n    assert torch.allclose(back(x)[0], model(x)[0], atol=1e-5)"
    )
    run_block("lstmkit.onnx.export(", checks, tmp_path / "deploy.py")
    assert (tmp_path / "lstm.onnx").is_file()
    assert (tmp_path / "lstm.int8.onnx").is_file()
