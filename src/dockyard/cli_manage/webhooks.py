"""`dockyard webhook list|create|deliveries|redeliver`: a namespace's webhooks and what they
delivered (owners of the namespace and administrators)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dockyard.cli_manage.common import clip, namespace_argument, print_json, print_list, remote, when

if TYPE_CHECKING:
    from dockyard.client import Client

EVENTS = ("image.pushed", "image.deleted", "scan.finished", "build.succeeded", "build.failed")
FORMATS = ("dockyard", "dockerhub")


def _last(delivery: Any) -> tuple[Any, Any]:
    """(status code or "-", error) of a delivery's last attempt."""
    attempts = delivery.get("attempts") or []
    if not attempts:
        return None, None
    last = attempts[-1]
    return last.get("response_status"), last.get("error")


@click.group()
def webhook() -> None:
    """Webhooks: signed POSTs to your deployers when images are pushed or deleted and scans finish."""


@webhook.command("list")
@namespace_argument
@remote(json=True)
def webhook_list(api: Client, ns: str, as_json: bool) -> None:
    """List a namespace's webhooks."""
    print_list(api.webhooks(ns), as_json, ["ID", "URL", "EVENTS", "FORMAT", "REPOSITORY", "ENABLED", "DESCRIPTION"],
               lambda w: [w.get("id"), clip(w.get("url"), 60), ",".join(w.get("events") or []), w.get("format"),
                          w.get("repository"), "yes" if w.get("enabled") else "no", clip(w.get("description"), 40)],
               f"no webhooks in {ns}")


@webhook.command("create")
@namespace_argument
@click.argument("hook_url", metavar="URL")
@click.option("--event", "events", type=click.Choice(EVENTS), multiple=True,
              help="An event to deliver; repeat for more (default: image.pushed).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Payload format (default: dockyard).")
@click.option("--repository", help="Only this repository, or a glob such as team/app-*.")
@click.option("--description", help="What it is for.")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@remote(json=True)
def webhook_create(api: Client, ns: str, hook_url: str, events: tuple[str, ...], fmt: str | None, repository: str | None,
                   description: str | None, disabled: bool, as_json: bool) -> None:
    """Create a webhook; its signing secret is printed once."""
    created = api.create_webhook(ns, hook_url, list(events) or ["image.pushed"], fmt, repository, description,
                                 False if disabled else None)
    if as_json:
        print_json(created)
        return
    click.echo(f"created webhook {created.get('id')} in {ns}")
    click.echo(f"signing secret (shown only now): {created.get('secret')}")


@webhook.command("deliveries")
@namespace_argument
@click.argument("webhook_id", type=int)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Show at most this many.")
@remote(json=True)
def webhook_deliveries(api: Client, ns: str, webhook_id: int, limit: int, as_json: bool) -> None:
    """A webhook's deliveries, newest first, with their last attempt."""
    print_list(api.deliveries(ns, webhook_id, limit=limit), as_json,
               ["ID", "EVENT", "STATUS", "ATTEMPTS", "LAST ANSWER", "CREATED", "ERROR"],
               lambda d: [d.get("id"), d.get("event"), d.get("status"), len(d.get("attempts") or []),
                          _last(d)[0], when(d.get("created_at")), clip(_last(d)[1], 50)],
               "no deliveries")


@webhook.command("redeliver")
@namespace_argument
@click.argument("webhook_id", type=int)
@click.argument("delivery_id")
@remote(json=True)
def webhook_redeliver(api: Client, ns: str, webhook_id: int, delivery_id: str, as_json: bool) -> None:
    """Queue one more attempt of a delivery (same body and webhook-id, new signature)."""
    delivery = api.redeliver(ns, webhook_id, delivery_id)
    if as_json:
        print_json(delivery)
        return
    click.echo(f"delivery {delivery.get('id')} queued again")
