"""Sweeps on a real Dask cluster: a scheduler and two worker processes on the loopback address, driven through
the command line (``microdl compare --executor dask --scheduler ADDRESS``), give the local run's numbers."""

import json

import pytest

from microdl.cli import main
from tests.experiments.tiny import numbers

distributed = pytest.importorskip("distributed")

ARGS = ["compare", "--dataset", "iris", "--optimizers", "sgd,adam", "--seeds", "2", "--epochs", "3", "--hidden", "8",
        "--no-progress"]


def test_compare_on_a_two_process_local_cluster_equals_the_local_run(tmp_path, capsys):
    assert main([*ARGS, "--out", str(tmp_path / "local")]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            pids = set(client.run(lambda: __import__("os").getpid()).values())
        assert len(pids) == 2 and __import__("os").getpid() not in pids  # two processes, not this one
        assert main([*ARGS, "--executor", "dask", "--scheduler", cluster.scheduler_address,
                     "--out", str(tmp_path / "dask")]) == 0
    local, remote = (json.loads((tmp_path / name / "history.json").read_text()) for name in ("local", "dask"))
    assert remote["config"]["backend"] == "dask"
    assert numbers(remote["runs"]) == numbers(local["runs"])
    assert len(remote["runs"]) == 2 * 2
    assert "4 runs in" in capsys.readouterr().out
