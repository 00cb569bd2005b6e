"""``voiyd``: the operator's command. ``voiyd up`` runs a whole local cluster in the foreground."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs
import rich_click as click

from voiyd import __version__, logs
from voiyd.auth.cli import auth_group, certs_group
from voiyd.up.cluster import UpSettings, run_up


@click.group(context_settings={"auto_envvar_prefix": "VOIYD"})
@click.version_option(__version__, prog_name="voiyd")
def main() -> None:
    """voiyd: run a local cluster (`voiyd up`); NATS credentials and certificates (`auth`,
    `certs`); manage the cluster with `voiydctl`."""


main.add_command(auth_group)
main.add_command(certs_group)


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=lambda: Path(platformdirs.user_data_dir("voiyd")) / "local",
    show_default="the user's data dir /voiyd/local",
    help="Where NATS JetStream and the daemons keep their state.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=4222,
    show_default=True,
    help="NATS client port (loopback only).",
)
@click.option(
    "--metrics-port",
    "metrics_base_port",
    type=click.IntRange(1, 65535),
    default=9470,
    show_default=True,
    help="First Prometheus port (voiyd-server).",
)
@click.option("--no-metrics", is_flag=True, help="Serve no Prometheus metrics.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    envvar="VOIYD_CONFIG",
    help="voiydctl config file to write the `local` context into.",
)
@click.option("--node-name", default="local", show_default=True, help="Name of the local node.")
@click.option(
    "--secure",
    is_flag=True,
    help="TLS and per-role NATS credentials (made once under DATA_DIR/secure); "
    "the `local` context gets the admin's.",
)
@click.option("--log-level", default="INFO", show_default=True)
def up(
    data_dir: Path,
    port: int,
    metrics_base_port: int,
    no_metrics: bool,
    config_path: Path | None,
    node_name: str,
    secure: bool,
    log_level: str,
) -> None:
    """Start nats-server (JetStream) and the voiyd daemons; Ctrl-C stops them all."""
    logs.setup("voiyd-up", log_level)
    settings = UpSettings(
        data_dir=data_dir,
        port=port,
        metrics_base_port=None if no_metrics else metrics_base_port,
        config_path=config_path,
        node_name=node_name,
        secure=secure,
    )
    sys.exit(run_up(settings))


if __name__ == "__main__":
    main()
