"""pachctl 1.7 commands tusk cannot have (Kubernetes deployment, port forwarding, auth and
enterprise, the Go debug dump). Each is present, takes whatever arguments 1.7's took, and
refuses with one line saying why and what to do instead (exit code 2, nothing changed)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from tusk.errors import InvalidArgument

# Arguments and flags of a refused command are accepted unread: the refusal is the answer.
_ANY = {
    "ignore_unknown_options": True,
    "allow_extra_args": True,
    "help_option_names": ["-h", "--help"],
}

DEPLOY = (
    "tusk is not deployed with pachctl: run a local server with `tusk up`, or deploy on "
    "Kubernetes with the chart in deploy/ (docs/deploy.md)"
)
AUTH = (
    "tusk has no users or ACLs: it has one API token; set TUSK_AUTH_TOKEN for the server and "
    "the same for the CLI (docs/differences.md)"
)
ENTERPRISE = "tusk has no enterprise edition: every feature is on, no activation code needed"


def refused(name: str, short: str, reason: str, hint: str) -> click.Command:
    """A command that takes anything and refuses with ``reason`` (its hint: ``hint``)."""

    def run(args: Sequence[str]) -> None:
        raise InvalidArgument(f"{name} is not supported by tusk: {reason}", hint=hint)

    cmd = click.command(
        name.rsplit(" ", 1)[-1],
        context_settings=_ANY,
        help=f"{short}\n\nNot supported by tusk: {reason}.",
        short_help=f"{short} (not supported by tusk)",
    )(click.argument("args", nargs=-1, type=click.UNPROCESSED)(run))
    return cmd


def refused_group(
    name: str, short: str, reason: str, hint: str, subcommands: Sequence[tuple[str, str]]
) -> click.Group:
    """A group whose every subcommand (and the group itself, called bare) refuses."""

    @click.group(
        name,
        invoke_without_command=True,
        context_settings=_ANY,
        help=f"{short}\n\nNot supported by tusk: {reason}.",
        short_help=f"{short} (not supported by tusk)",
    )
    @click.pass_context
    def group(ctx: click.Context) -> None:
        if ctx.invoked_subcommand is None:
            raise InvalidArgument(f"{name} is not supported by tusk: {reason}", hint=hint)

    for sub, sub_short in subcommands:
        group.add_command(refused(f"{name} {sub}", sub_short, reason, hint))
    return group


deploy = refused_group(
    "deploy",
    "Deploy a Pachyderm cluster.",
    DEPLOY,
    "tusk up",
    [
        ("local", "Deploy a single-node Pachyderm cluster with local metadata storage."),
        ("amazon", "Deploy a Pachyderm cluster running on AWS."),
        ("google", "Deploy a Pachyderm cluster running on GCP."),
        ("microsoft", "Deploy a Pachyderm cluster running on Microsoft Azure."),
        ("custom", "(in progress) Deploy a custom Pachyderm cluster configuration"),
        ("storage", "Deploy credentials for a particular storage provider."),
        ("list-images", "Output the list of images in a deployment."),
        (
            "export-images",
            "Export a tarball (to stdout) containing all of the images in a deployment.",
        ),
        (
            "import-images",
            "Import a tarball (from stdin) containing all of the images in a deployment and push them to a private registry.",
        ),
    ],
)
undeploy = refused(
    "undeploy",
    "Tear down a deployed Pachyderm cluster.",
    "a local server stops with `tusk down`; on Kubernetes, delete the chart's objects",
    "tusk down (local), or helm uninstall / kubectl delete -f deploy/manifests/tusk.yaml",
)
update_dash = refused(
    "update-dash",
    "Update and redeploy the Pachyderm Dashboard at the latest compatible version.",
    "tusk's console is part of tuskd and is updated with it: there is nothing to deploy",
    "`tusk console` prints its URL (/console/ on the server's port) and opens it",
)
port_forward = refused(
    "port-forward",
    "Forward a port on the local machine to pachd. This command blocks.",
    "the CLI talks HTTP straight to TUSK_ADDRESS (a local server needs no forwarding)",
    "on Kubernetes: kubectl port-forward svc/tuskd 30650, then TUSK_ADDRESS=localhost:30650",
)
debug_dump = refused(
    "debug-dump",
    "Return a dump of running goroutines.",
    "tuskd is a Python server, not Go",
    "read the server's log ($TUSK_HOME/tuskd.log for a local server) and `tusk status`",
)
auth = refused_group(
    "auth",
    "Auth commands manage access to data in a Pachyderm cluster",
    AUTH,
    "TUSK_AUTH_TOKEN=<token> tusk up, then the same TUSK_AUTH_TOKEN for every CLI call",
    [
        ("activate", "Activate Pachyderm's auth system"),
        ("deactivate", "Delete all ACLs, tokens, and admins, and deactivate Pachyderm auth"),
        ("login", "Log in to Pachyderm"),
        ("logout", "Log out of Pachyderm by deleting your local credential"),
        ("whoami", "Print your Pachyderm identity"),
        ("check", "Check whether you have reader/writer/etc-level access to 'repo'"),
        ("get", "Get the ACL for 'repo' or the access that 'username' has to 'repo'"),
        ("set", "Set the scope of access that 'username' has to 'repo'"),
        ("list-admins", "List the current cluster admins"),
        ("modify-admins", "Modify the current cluster admins"),
        ("get-auth-token", 'Get an auth token that authenticates the holder as "username"'),
        (
            "use-auth-token",
            "Read a Pachyderm auth token from stdin, and write it to the current user's Pachyderm config file",
        ),
        ("get-config", "Retrieve Pachyderm's current auth configuration"),
        ("set-config", "Set Pachyderm's current auth configuration"),
    ],
)
enterprise = refused_group(
    "enterprise",
    "Enterprise commands enable Pachyderm Enterprise features",
    ENTERPRISE,
    "just use the feature",
    [
        ("activate", "Activate the enterprise features of Pachyderm with an activation code"),
        ("get-state", "Check whether the Pachyderm cluster has enterprise features activated"),
    ],
)

COMMANDS: list[click.Command] = [
    deploy,
    undeploy,
    update_dash,
    port_forward,
    debug_dump,
    auth,
    enterprise,
]
