"""Template volume files on a node (voiyd.agent.templates), and how runtimes are told to mount them.

``Templates`` writes into a temp dir only; the rest is pure: which task directories can go
(``reconcile.stale_templates``), and the Docker bind a template volume becomes.
"""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from voiyd.agent.reconcile import stale_templates
from voiyd.agent.runtimes.docker import create_body
from voiyd.agent.runtimes.protocol import ContainerSpec, InvalidSpecError, Observed
from voiyd.agent.templates import Templates, digest
from voiyd.api.agent import Assignment
from voiyd.api.specs import TaskConfig

FILES = {"nginx.conf": "worker_processes 1;\n", "conf.d/site.conf": "server {}\n"}
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_write_puts_the_files_read_only_behind_a_link_named_for_the_volume(
    tmp_path: Path,
) -> None:
    templates = Templates(tmp_path)
    content = templates.write("web", "conf", FILES)
    link = templates.path("web", "conf")
    assert link.is_symlink()
    assert link.resolve() == content.resolve()
    assert (link / "nginx.conf").read_text() == "worker_processes 1;\n"
    assert (link / "conf.d" / "site.conf").read_text() == "server {}\n"
    assert mode(content / "nginx.conf") == 0o444
    assert mode(content / "conf.d") == 0o555
    assert mode(content) == 0o555


def test_writing_the_same_files_again_changes_nothing(tmp_path: Path) -> None:
    templates = Templates(tmp_path)
    first = templates.write("web", "conf", FILES)
    written_at = (first / "nginx.conf").stat().st_mtime_ns
    again = templates.write("web", "conf", dict(reversed(FILES.items())))
    assert again == first
    assert (again / "nginx.conf").stat().st_mtime_ns == written_at


def test_changed_files_swap_the_link_and_keep_one_previous_content(tmp_path: Path) -> None:
    templates = Templates(tmp_path)
    v1 = templates.write("web", "conf", FILES)
    v2 = templates.write("web", "conf", {"nginx.conf": "v2\n"})
    assert v2 != v1
    assert (templates.path("web", "conf") / "nginx.conf").read_text() == "v2\n"
    assert not (templates.path("web", "conf") / "conf.d").exists()
    assert v1.is_dir()  # a container still stopping may have it mounted
    v3 = templates.write("web", "conf", {"nginx.conf": "v3\n"})
    assert not v1.exists()
    assert v2.is_dir()
    assert (templates.path("web", "conf") / "nginx.conf").read_text() == "v3\n"
    assert sorted(p.name for p in (tmp_path / "web").iterdir()) == sorted(
        ["conf", v2.name, v3.name]
    )


def test_writing_a_volume_leaves_a_volume_whose_name_starts_the_same_alone(
    tmp_path: Path,
) -> None:
    templates = Templates(tmp_path)
    extra = templates.write("web", "conf-extra", {"a.conf": "extra\n"})
    templates.write("web", "conf", {"a.conf": "v1\n"})
    templates.write("web", "conf", {"a.conf": "v2\n"})
    templates.write("web", "conf", {"a.conf": "v3\n"})
    assert extra.is_dir()
    assert (templates.path("web", "conf-extra") / "a.conf").read_text() == "extra\n"


def test_the_digest_depends_on_paths_and_contents_not_on_order() -> None:
    assert digest({"a": "1", "b": "2"}) == digest({"b": "2", "a": "1"})
    assert digest({"a": "1"}) != digest({"a": "2"})
    assert digest({"a": "12"}) != digest({"a1": "2"})


def test_remove_forgets_a_tasks_read_only_files_and_only_them(tmp_path: Path) -> None:
    templates = Templates(tmp_path / "templates")
    templates.write("web", "conf", FILES)
    templates.write("db", "conf", FILES)
    assert templates.tasks() == {"web", "db"}
    templates.remove("web")
    assert templates.tasks() == {"db"}
    assert (templates.path("db", "conf") / "nginx.conf").exists()
    with pytest.raises(ValueError, match="not a task name"):
        templates.remove("..")


def test_remove_unlinks_symlinks_and_never_follows_them(tmp_path: Path) -> None:
    precious = tmp_path / "volumes" / "data"
    precious.mkdir(parents=True)
    (precious / "keep").write_text("kept")
    templates = Templates(tmp_path / "templates")
    templates.write("web", "conf", FILES)
    (tmp_path / "templates" / "web" / "stray").symlink_to(precious)
    templates.remove("web")
    assert (precious / "keep").read_text() == "kept"


def _observed(task: str) -> Observed:
    return Observed(id=f"c-{task}", task=task, epoch=1, node="n1", state="exited")


def _assignment(task: str) -> Assignment:
    return Assignment(
        task=task,
        node="n1",
        epoch=1,
        desired="running",
        config=TaskConfig(image="busybox"),
        revision=1,
        updated_at=NOW,
    )


@pytest.mark.parametrize(
    ("on_disk", "desired", "containers", "stale"),
    [
        pytest.param({"web"}, {"web"}, set(), set(), id="still-assigned"),
        pytest.param({"web"}, set(), {"web"}, set(), id="container-still-there"),
        pytest.param({"web", "db"}, {"db"}, set(), {"web"}, id="gone-from-the-node"),
        pytest.param(set(), {"web"}, set(), set(), id="nothing-on-disk"),
    ],
)
def test_stale_templates_are_of_tasks_neither_assigned_nor_running_here(
    on_disk: set[str], desired: set[str], containers: set[str], stale: set[str]
) -> None:
    assignments = {t: _assignment(t) for t in desired}
    observed = [_observed(t) for t in containers]
    assert stale_templates(on_disk, assignments, observed) == stale


def _spec(templates: dict[str, Path], *mounts: str) -> ContainerSpec:
    return ContainerSpec(
        task="web",
        epoch=1,
        node="n1",
        config=TaskConfig(image="busybox", mounts=list(mounts)),
        volumes_dir=Path("/node/volumes"),
        templates=templates,
    )


def test_docker_binds_a_template_volume_read_only_and_a_host_local_one_as_asked() -> None:
    spec = _spec(
        {"conf": Path("/node/templates/web/.conf-abc")},
        "conf:/etc/nginx",
        "data:/var/data",
        "cache:/cache:ro",
    )
    assert create_body(spec)["HostConfig"]["Binds"] == [
        "/node/templates/web/.conf-abc:/etc/nginx:ro",
        "/node/volumes/data:/var/data",
        "/node/volumes/cache:/cache:ro",
    ]


def test_a_template_directory_is_never_made_by_the_runtime(tmp_path: Path) -> None:
    spec = _spec({"conf": tmp_path / "missing"}, "conf:/etc/nginx", "data:/var/data")
    conf, data = spec.config.mounts
    with pytest.raises(InvalidSpecError, match="template volume 'conf'"):
        spec.prepare_volume(conf)
    assert not (tmp_path / "missing").exists()
    local = ContainerSpec(
        task="web", epoch=1, node="n1", config=spec.config, volumes_dir=tmp_path / "volumes"
    )
    assert local.prepare_volume(data).is_dir()
    assert spec.read_only(conf)
    assert not spec.read_only(data)
