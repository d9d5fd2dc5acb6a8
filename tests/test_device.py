"""lldif_bench.device: device choice and the CPU subnormal flush that the CLI and harness turn on."""

from __future__ import annotations

import subprocess
import sys

import torch

from lldif_bench.device import resolve_device

# Runs in a fresh process: the flag is process-wide and would leak into the other tests.
PROBE = """
import torch
torch.set_num_threads(2)
{setup}
x = torch.full((1 << 20,), 3e-38)
print(int(((x * 0.01) != 0).sum()))
"""
CLI_START = """
from click.testing import CliRunner
from lldif_bench.cli.main import main
assert CliRunner().invoke(main, ["presets"]).exit_code == 0
"""


def nonzero_subnormal_results(setup: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], capture_output=True, text=True,
                         check=True).stdout
    return int(out.split()[-1])


def test_auto_is_cpu_without_cuda():
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")


def test_subnormal_results_are_kept_by_default():
    assert nonzero_subnormal_results("") == 1 << 20


def test_flush_zeroes_subnormal_results_in_every_thread():
    setup = "from lldif_bench.device import flush_cpu_subnormals\nassert flush_cpu_subnormals()"
    assert nonzero_subnormal_results(setup) == 0


def test_the_cli_flushes_at_start_up():
    assert nonzero_subnormal_results(CLI_START) == 0
