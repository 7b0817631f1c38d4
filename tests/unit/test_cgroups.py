"""Where a sandbox's cgroup goes, read from /proc's texts for hybrid (v1) and pure v2 hosts."""

from __future__ import annotations

from pathlib import Path

from tusk.worker.runtimes.cgroups import oom_kills_in, parse_mounts, parse_own_paths

HYBRID_MOUNTINFO = """\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec shared:5 - cgroup2 cgroup2 rw
34 30 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec shared:8 - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec shared:10 - cgroup cgroup rw,pids
"""
HYBRID_CGROUP = """\
8:pids:/
4:memory:/service/abc
1:cpu,cpuacct:/
0::/
"""
V2_MOUNTINFO = """\
25 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""
V2_CGROUP = "0::/user.slice/tusk.scope\n"


def test_hybrid_hosts_have_a_hierarchy_per_controller() -> None:
    mounts = parse_mounts(HYBRID_MOUNTINFO)
    assert ("/sys/fs/cgroup/memory", "cgroup", {"rw", "memory"}) in mounts
    assert ("/sys/fs/cgroup/cpu,cpuacct", "cgroup", {"rw", "cpu", "cpuacct"}) in mounts
    assert ("/sys/fs/cgroup/unified", "cgroup2", {"rw"}) in mounts
    assert all(kind != "tmpfs" for _, kind, _ in mounts)
    own = parse_own_paths(HYBRID_CGROUP)
    assert own == {"pids": "/", "memory": "/service/abc", "cpu": "/", "cpuacct": "/", "": "/"}


def test_pure_v2_hosts_have_one_unified_hierarchy() -> None:
    assert parse_mounts(V2_MOUNTINFO) == [("/sys/fs/cgroup", "cgroup2", {"rw", "nsdelegate"})]
    assert parse_own_paths(V2_CGROUP) == {"": "/user.slice/tusk.scope"}


def test_oom_kills_are_read_from_v1_and_v2_files(tmp_path: Path) -> None:
    v1 = tmp_path / "memory.oom_control"
    v1.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    v2 = tmp_path / "memory.events"
    v2.write_text("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n")
    assert oom_kills_in(v1) == 3
    assert oom_kills_in(v2) == 2
    assert oom_kills_in(tmp_path / "absent") == 0
