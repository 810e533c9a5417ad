"""A two-node Ray cluster on one machine (``ray.cluster_utils.Cluster``): the driver joins it by
address, as ``drakewell sweep --address`` does, and the cells land on both nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from drakewell.sweep import RayExecutor, run_sweep

pytestmark = pytest.mark.slow


def test_a_sweep_runs_on_both_nodes_of_a_two_node_cluster(make_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    node_args = {"num_cpus": 1, "object_store_memory": 100 * 1024 * 1024}
    cluster = Cluster(initialize_head=True, head_node_args={**node_args, "include_dashboard": False})
    try:
        cluster.add_node(**node_args)
        cluster.wait_for_nodes()
        spec = make_spec(axes={"hashprice_usd_per_ph_day": [30, 45, 60, 80]}, sweep={"policy": "mpc"})
        executor = RayExecutor(address=cluster.address)
        try:
            assert executor.slots == 2
            nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
            frame = run_sweep(spec, tmp_path, executor, report=False).results
        finally:
            executor.close()
        assert not ray.is_initialized()  # the executor joined the cluster, so it leaves it
    finally:
        cluster.shutdown()
    assert len(nodes) == 2
    assert set(frame["status"]) == {"ok"} and len(frame) == 4
    assert set(frame["worker"]) == nodes  # tasks landed on both nodes
    assert list(frame["attempts"]) == [1, 1, 1, 1]
