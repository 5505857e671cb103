"""Multi-node data parallelism on one machine: two torchrun launchers, one per "node", make the 1-process update.

A cluster starts one `torchrun --nnodes 2 --node_rank i --nproc_per_node 1 --master_addr HOST --master_port P`
per machine; here both run on 127.0.0.1 (gloo, CPU) at the same time, each "node" with its own TMPDIR and
R1_CACHE (what a machine keeps for itself), sharing the run directory as a cluster shares its file system.
The rendezvous is torchrun's static one (--master_addr/--master_port with --node_rank), not c10d: with it a
node's rank is the --node_rank it was given, so the test can check that node 1's process sees what it would on
a second machine (RANK=1 but LOCAL_RANK=0; GROUP_RANK=1), where c10d hands out node ranks in arrival order.

This file is also the worker script (`worker`): it records what the launcher set, then runs the jobs through
tests/test_distributed.py's worker, whose per-prompt sampling makes the runs comparable (see its docstring).

Not covered: a real network between machines, NCCL, more than 2 nodes or more than 1 process per node.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_distributed import GRPO, SFT, TORCHRUN, assert_same_update, main, one_process_runs, overrides, sft_data

from r1.config import ConfigError
from r1.train import checkpoint as ckpt
from r1.train import distributed as dist

LAUNCHER_VARS = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "GROUP_WORLD_SIZE",
    "ROLE_RANK",
    "MASTER_ADDR",
)
DEADLINE_S = 300  # both launchers together; the whole test takes ~40 s on 2 busy cores


def worker(local: Path, jobs_file: str) -> None:
    """What torchrun starts on each node: record the launcher's variables (and our pid), run the jobs, record ranks."""
    record = local / "seen.json"
    seen = {key: os.environ.get(key) for key in LAUNCHER_VARS} | {"pid": os.getpid()}
    record.write_text(json.dumps(seen))
    main(jobs_file)
    seen |= {"rank": dist.rank(), "world": dist.world(), "device": str(dist.device()), "tmp": tempfile.gettempdir()}
    record.write_text(json.dumps(seen))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(node: int, port: int, local: Path, jobs_file: Path) -> subprocess.Popen:
    """One node's launcher, with the node's own temp and cache folders; its output goes to local/log."""
    (local / "tmp").mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(local / "tmp"), "R1_CACHE": str(local / "cache")}
    argv = [
        str(TORCHRUN),
        "--nnodes",
        "2",
        "--node_rank",
        str(node),
        "--nproc_per_node",
        "1",
        "--max_restarts",
        "0",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(port),
        __file__,
        str(local),
        str(jobs_file),
    ]
    with open(local / "log", "w") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(launchers: list[subprocess.Popen], locals_: list[Path]) -> None:
    """End what is still running: each launcher (SIGTERM, which torchrun passes to its worker), then any worker left."""
    for proc in launchers:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for local in locals_:  # a worker outlives a launcher killed by SIGKILL (torchrun starts it in its own session)
        seen = local / "seen.json"
        if seen.is_file():
            try:
                os.kill(json.loads(seen.read_text())["pid"], signal.SIGKILL)
            except (OSError, ValueError):
                pass  # gone already


@pytest.fixture(scope="module")
def nodes(tiny_model_dir, tmp_path_factory):
    """Run directories: `1/<job>` from this process, `2/<job>` from two 1-process torchrun nodes; `node<i>/`
    holds node i's temp and cache folders, its launcher log and `seen.json`."""
    root = tmp_path_factory.mktemp("nodes")
    jobs = {"kl": ("grpo", GRPO["kl"]), "sft": ("sft", [*SFT, f"sft.data={sft_data(root / 'sft.jsonl')}"])}
    two = [
        {"cmd": cmd, "overrides": overrides(tiny_model_dir, root / "2" / name, extra)}
        for name, (cmd, extra) in jobs.items()
    ]
    (root / "jobs.json").write_text(json.dumps(two))
    port, locals_ = free_port(), [root / "node0", root / "node1"]
    launchers = [launch(node, port, local, root / "jobs.json") for node, local in enumerate(locals_)]
    try:
        one_process_runs(tiny_model_dir, root / "1", jobs)  # the references meanwhile
        deadline = time.monotonic() + DEADLINE_S
        for proc in launchers:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the two nodes did not finish within {DEADLINE_S} s:\n" + logs(locals_))
    finally:
        stop(launchers, locals_)
    assert [p.returncode for p in launchers] == [0, 0], logs(locals_)
    return root


def logs(locals_: list[Path]) -> str:
    return "\n".join(
        f"--- {local.name}\n{(local / 'log').read_text()[-4000:]}" for local in locals_ if (local / "log").is_file()
    )


@pytest.mark.parametrize("name", ["kl", "sft"])
def test_two_nodes_make_the_one_process_update(nodes, tiny_model_dir, name):
    assert_same_update(nodes / "1" / name, nodes / "2" / name, name, tiny_model_dir)


@pytest.mark.parametrize("node", [0, 1])
def test_each_node_sees_what_a_cluster_sets(nodes, node):
    seen = json.loads((nodes / f"node{node}" / "seen.json").read_text())
    assert {k: seen[k] for k in LAUNCHER_VARS} == {
        "RANK": str(node),
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "1",
        "GROUP_RANK": str(node),
        "GROUP_WORLD_SIZE": "2",
        "ROLE_RANK": str(node),
        "MASTER_ADDR": "127.0.0.1",
    }
    assert (seen["rank"], seen["world"], seen["device"]) == (node, 2, "cpu")  # the global rank, not the local one
    assert seen["tmp"] == str(nodes / f"node{node}" / "tmp")  # node-local temp space, as on a machine of its own


def test_a_node_that_does_not_see_the_run_directory_cannot_resume(tmp_path, monkeypatch):
    final = tmp_path / "checkpoints" / "final"
    final.mkdir(parents=True)
    (final / ckpt.STEP_FILE).write_text(json.dumps({"step": 2}))
    monkeypatch.setattr(dist, "gather_objects", lambda found: [found, None])  # rank 1's node has no such folder
    refused = r"different checkpoints to resume from .*by rank: \['.*final', None\].*on a file system every node shares"
    with pytest.raises(ConfigError, match=refused):
        ckpt.latest_checkpoint(tmp_path)
    monkeypatch.setattr(dist, "gather_objects", lambda found: [found, found])
    assert ckpt.latest_checkpoint(tmp_path) == final


if __name__ == "__main__":
    worker(Path(sys.argv[1]), sys.argv[2])
