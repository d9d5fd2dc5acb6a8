"""DDP on the CPU with gloo: two processes with the same global batch follow one process's losses."""

from __future__ import annotations

import os
import socket

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from test_training_support import make_folder_dataset, quiet_config, weights_of

from lldif_bench.training import run_training


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, kwargs: dict) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    import test_training_support  # noqa: F401  (registers the toy method in the child)

    run_training(quiet_config(**kwargs))


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_two_gloo_processes_match_one_process(tmp_path):
    data = make_folder_dataset(tmp_path / "tinyfer")
    common = {"method": "toy-test", "data": str(data), "out": str(tmp_path / "runs"), "epochs": 2,
              "batch_size": 16, "leaderboard": False}
    torch.set_num_threads(1)
    single = run_training(quiet_config(**common, name="one"))
    mp.spawn(_worker, args=(2, _free_port(), {**common, "name": "two"}), nprocs=2, join=True)
    two = tmp_path / "runs" / "two"
    a = pd.read_csv(single / "metrics.csv")
    b = pd.read_csv(two / "metrics.csv")
    assert len(a) == len(b) == 2 and (b["images"] == 42).all()    # 42 = 16 + 16 + 10 split 5/5 at the end
    assert a["train_loss"].tolist() == pytest.approx(b["train_loss"].tolist(), rel=1e-5)
    assert a["test_accuracy"].tolist() == b["test_accuracy"].tolist()
    wa, wb = weights_of(single / "checkpoints" / "last.safetensors"), weights_of(two / "checkpoints" / "last.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
