"""voiydctl's contexts: the config file model, ``save_context`` and the ``config`` commands.

No NATS is needed: these commands only read and write the file given with ``--config``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from voiyd.bus.connect import NatsOptions
from voiyd.cli import config
from voiyd.cli.main import cli
from voiyd.errors import InvalidRequestError, NotFoundError


def voiydctl(cfg: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(cfg), *args], input=stdin)


def test_init_writes_a_default_context_and_refuses_to_overwrite(tmp_path: Path) -> None:
    cfg = tmp_path / "sub" / "config.yaml"
    first = voiydctl(cfg, "config", "init")
    assert first.exit_code == 0, first.output
    assert yaml.safe_load(cfg.read_text()) == {
        "version": "config/v1",
        "current": "default",
        "contexts": [{"name": "default", "server": "nats://127.0.0.1:4222"}],
    }
    again = voiydctl(cfg, "config", "init")
    assert again.exit_code == 5
    assert again.stderr.startswith("error: config file ")
    assert "--force" in again.stderr
    assert voiydctl(cfg, "config", "init", "--force").exit_code == 0


def test_create_server_use_view_and_list(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    assert voiydctl(cfg, "config", "init").exit_code == 0
    created = voiydctl(
        cfg, "config", "create-server", "prod", "--server", "nats://a:4222", "--creds", "/p.creds"
    )
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith("context prod created")
    listing = voiydctl(cfg, "config", "list").stdout.splitlines()
    assert listing[0].split() == ["CURRENT", "NAME", "SERVER", "CREDS"]
    assert listing[1].split() == ["*", "default", "nats://127.0.0.1:4222", "<none>"]
    assert listing[2].split() == ["prod", "nats://a:4222", "/p.creds"]

    assert voiydctl(cfg, "config", "use", "prod").stdout == "switched to context prod\n"
    viewed = yaml.safe_load(voiydctl(cfg, "config", "view").stdout)
    assert viewed["current"] == "prod"

    updated = voiydctl(cfg, "config", "create-server", "prod", "--server", "nats://b:4222")
    assert updated.stdout.startswith("context prod updated")
    prod = config.load(cfg).find("prod")
    assert prod is not None
    assert (prod.server, prod.creds) == ("nats://b:4222", "/p.creds")


def test_create_server_with_use_makes_it_current(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    voiydctl(cfg, "config", "init")
    voiydctl(cfg, "config", "create-server", "lab", "--server", "nats://lab:4222", "--use")
    assert config.load(cfg).current == "lab"


def test_use_of_an_unknown_context_is_not_found(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    voiydctl(cfg, "config", "init")
    result = voiydctl(cfg, "config", "use", "nope")
    assert result.exit_code == 4
    assert result.stderr.count("\n") == 1
    assert "context 'nope' not found" in result.stderr


def test_config_path_comes_from_voiyd_config(tmp_path: Path) -> None:
    cfg = tmp_path / "env.yaml"
    result = CliRunner(env={"VOIYD_CONFIG": str(cfg)}).invoke(cli, ["config", "init"])
    assert result.exit_code == 0, result.output
    assert cfg.exists()


def test_a_broken_config_file_is_invalid(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("version: config/v1\ncontexts: [{name: x}]\n")
    result = voiydctl(cfg, "config", "list")
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: config file {cfg}: contexts.0.server")


def test_save_context_adds_local_and_makes_it_current(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    config.init(cfg, force=False)
    path = config.save_context(cfg, "local", "nats://127.0.0.1:4333", make_current=True)
    assert path == cfg
    loaded = config.load(cfg)
    assert loaded.current == "local"
    assert [c.name for c in loaded.contexts] == ["default", "local"]
    config.save_context(cfg, "local", "nats://127.0.0.1:4444", make_current=False)
    local = config.load(cfg).find("local")
    assert local is not None and local.server == "nats://127.0.0.1:4444"


def test_save_context_creates_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "new" / "config.yaml"
    config.save_context(cfg, "local", "nats://127.0.0.1:4333", make_current=False)
    assert config.load(cfg).current == "local"  # the only context becomes current


def test_resolve_flags_override_the_context(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    config.save_context(cfg, "a", "nats://a:1,nats://b:2", make_current=True)
    assert config.resolve(cfg, None, None, None)[1] == NatsOptions(
        servers=("nats://a:1", "nats://b:2")
    )
    assert config.resolve(cfg, None, None, None)[0] == "context a"
    source, opts = config.resolve(cfg, None, "nats://x:3", Path("/c.creds"))
    assert opts.servers == ("nats://x:3",)
    assert opts.creds_file == Path("/c.creds")
    assert "--server" in source


def test_resolve_without_a_file_uses_the_local_default(tmp_path: Path) -> None:
    assert config.resolve(tmp_path / "none.yaml", None, None, None)[1].servers == (
        config.DEFAULT_SERVER,
    )


def test_resolve_an_unknown_context_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        config.resolve(tmp_path / "none.yaml", "nope", None, None)


def test_load_rejects_invalid_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("contexts: [\n")
    with pytest.raises(InvalidRequestError, match="not valid YAML"):
        config.load(cfg)


# ---- apply validates everything before it connects -------------------------------------------

UNREACHABLE = "nats://127.0.0.1:1"


@pytest.mark.parametrize(
    ("manifest", "line"),
    [
        pytest.param(
            "version: task/v1\nmeta: {name: web\nconfig: {}\n",
            "error: <stdin>: not valid YAML: line 3, column",
            id="malformed-yaml",
        ),
        pytest.param(
            "version: job/v1\nmeta: {name: data}\nconfig: {}\n",
            "error: document 1 (job/data): version: unsupported kind 'job/v1'",
            id="unknown-kind",
        ),
        pytest.param(
            "version: volume/v1\nmeta: {name: data}\nconfig: {}\n",
            "error: document 1 (volume/data): config: a host-local volume needs node",
            id="volume-without-node",
        ),
        pytest.param(
            "version: task/v1\nmeta: {name: web}\nconfig: {image: nginx, memory: 1}\n",
            "error: document 1 (task/web): config.memory: unknown field",
            id="invalid-field",
        ),
    ],
)
def test_apply_of_a_bad_manifest_exits_3_with_one_line_and_sends_nothing(
    tmp_path: Path, manifest: str, line: str
) -> None:
    result = voiydctl(
        tmp_path / "c.yaml", "--server", UNREACHABLE, "apply", "-f", "-", stdin=manifest
    )
    assert result.exit_code == 3  # not 7: it never tried to connect
    assert result.stderr.startswith(line)
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_apply_lists_every_problem_on_its_own_line(tmp_path: Path) -> None:
    manifest = (
        "version: task/v1\nmeta: {name: Web}\nconfig: {image: nginx}\n---\n"
        "version: task/v1\nmeta: {name: db}\nconfig: {runtime: exec}\n"
    )
    result = voiydctl(
        tmp_path / "c.yaml", "--server", UNREACHABLE, "apply", "-f", "-", stdin=manifest
    )
    assert result.exit_code == 3
    lines = result.stderr.splitlines()
    assert lines[0] == "error: <stdin>: 2 problems; nothing was applied"
    assert lines[1].startswith("  document 1 (task/Web): meta.name: ")
    assert lines[2].startswith("  document 2 (task/db): config: ")


def test_run_with_a_bad_env_pair_is_a_usage_error(tmp_path: Path) -> None:
    result = voiydctl(tmp_path / "c.yaml", "run", "web", "--image", "x", "--env", "FOO")
    assert result.exit_code == 2
    assert "'FOO' is not KEY=VALUE" in result.stderr
