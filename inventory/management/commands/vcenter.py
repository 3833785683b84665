import argparse
import os
import re
import time

from django.conf import settings
from django.core.management.base import CommandError
from django.db import transaction
from rest_framework.exceptions import ValidationError

from inventory import crypto, services
from inventory.api.serializers import VCenterCreateSerializer, VCenterSerializer
from inventory.management.base import InventoryCommand
from inventory.management.vcenters import resolve_vcenter
from inventory.models import SyncRun, SyncStatus, VCenter
from inventory.removal import vcenter_removal_effects
from inventory.tables import changed_rows
from inventory.views.health import OK, ping_workers
from inventory.vsphere.connection import VCenterError

# `vcenter add` checks its input with the API's serializer; its errors name the option, not the model field.
ADD_OPTIONS = {
    "name": "vcenter name",
    "url": "--url",
    "username": "--user",
    "password": "--password-env",
    "verify_tls": "--no-verify-tls",
    "ca_file": "--ca-file",
    "sync_interval_minutes": "--interval",
    "enabled": "--enable/--disable",
}
NO_WORKER = "no Celery worker answered a ping: the run stays queued until one starts (celery -A config worker)"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _RefusePassword(argparse.Action):
    """``--password VALUE``: refused without repeating the value (it would end up in logs and scrollback)."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(
            "--password: a password is not taken on the command line (shell history, process list); put it in an "
            "environment variable and give that variable's name with --password-env"
        )


def _option_errors(errors: dict) -> str:
    parts = []
    for field, messages in errors.items():
        label = ADD_OPTIONS.get(field)
        text = " ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
        parts.append(f"{label}: {text}" if label else text)
    return "; ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


class Command(InventoryCommand):
    help = (
        "Manage the vCenters the advisor polls: add, set, list, remove, test, sync, cancel, accept-new-identity, rekey."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="register a vCenter (password from an environment variable)")
        add.add_argument("name")
        add.add_argument("--url", required=True, help="https://HOST[:PORT]/sdk")
        add.add_argument("--user", required=True)
        add.add_argument("--password-env", required=True, help="name of the environment variable holding the password")
        add.add_argument("--password", nargs="?", action=_RefusePassword, help=argparse.SUPPRESS)
        add.add_argument("--no-verify-tls", action="store_true", help="do not verify the vCenter's TLS certificate")
        add.add_argument("--ca-file", default="", help="PEM CA bundle to verify the vCenter's certificate with")
        add.add_argument(
            "--interval", type=int, default=None, help="minutes between scheduled syncs (default 5, at most 10080)"
        )
        change = sub.add_parser(
            "set",
            help="change a vCenter's settings: rotate its password, a new CA file, URL, user, interval; what is not "
            "given is kept (a URL to another server, TLS verification turned off or another CA file need "
            "--password-env too)",
        )
        change.add_argument("name")
        change.add_argument("--url", help="https://HOST[:PORT]/sdk")
        change.add_argument("--user")
        change.add_argument("--password-env", help="name of the environment variable holding the new password")
        change.add_argument("--password", nargs="?", action=_RefusePassword, help=argparse.SUPPRESS)
        tls = change.add_mutually_exclusive_group()
        tls.add_argument("--verify-tls", dest="verify_tls", action="store_const", const=True, default=None)
        tls.add_argument("--no-verify-tls", dest="verify_tls", action="store_const", const=False)
        change.add_argument("--ca-file", help="PEM CA bundle to verify the vCenter's certificate with ('' for none)")
        change.add_argument("--interval", type=int, default=None, help="minutes between scheduled syncs (1 to 10080)")
        state = change.add_mutually_exclusive_group()
        state.add_argument("--enable", dest="enabled", action="store_const", const=True, default=None)
        state.add_argument("--disable", dest="enabled", action="store_const", const=False)
        sub.add_parser("list", help="list vCenters and their last sync")
        remove = sub.add_parser("remove", help="remove a vCenter and everything collected from it")
        remove.add_argument("name")
        test = sub.add_parser("test", help="log in and print what the vCenter reports about itself")
        test.add_argument("name")
        sync = sub.add_parser("sync", help="run one sync (in the foreground, or on the worker with --queue)")
        sync.add_argument("name")
        sync.add_argument(
            "--queue", action="store_true", help="run it on the Celery worker (as the page and API do) and wait"
        )
        sync.add_argument("--timeout", type=float, default=None, help="with --queue: seconds to wait for the result")
        cancel = sub.add_parser("cancel", help="cancel the vCenter's queued sync (a running one ends by itself)")
        cancel.add_argument("name")
        accept = sub.add_parser(
            "accept-new-identity",
            help="confirm that the vCenter now answering at NAME's URL (another instance UUID: redeployed or "
            "replaced) is the one NAME syncs from now on; its syncs refuse it until then. The next sync applies its "
            "inventory and marks the old vCenter's hosts and VMs stale",
        )
        accept.add_argument("name")
        accept.add_argument(
            "--expect",
            metavar="UUID",
            default="",
            help="the new instance UUID the failed sync named: refused when the vCenter answers with another one",
        )
        sub.add_parser(
            "rekey",
            help="re-encrypt every stored vCenter password with the first key of FIELD_ENCRYPTION_KEY (after a key "
            "rotation; all or nothing)",
        )

    def handle(self, *args, action: str, **options):
        getattr(self, f"_{action.replace('-', '_')}")(**options)

    def _cancel(self, name, **_):
        vcenter = self._get(name)
        queued = list(vcenter.sync_runs.filter(status=SyncStatus.QUEUED).order_by("pk"))
        if not queued:
            running = vcenter.sync_runs.filter(status=SyncStatus.RUNNING).first()
            what = f"sync #{running.pk} is running (it ends by itself)" if running else "nothing is pending"
            raise CommandError(f"{vcenter.name}: no queued sync to cancel; {what}")
        for run in queued:
            try:
                run = services.cancel_sync(run=run, by="manage.py vcenter cancel")
            except services.NotCancellable as exc:  # it started meanwhile
                raise CommandError(str(exc)) from None
            self.stdout.write(f"sync #{run.pk} of {vcenter.name}: {run.error}")

    def _get(self, name: str) -> VCenter:
        return resolve_vcenter(name, option="vcenter name")

    @staticmethod
    def _password(password_env: str) -> str:
        if not ENV_NAME.fullmatch(password_env):
            # Not echoed: what was given here may well be the password itself.
            raise CommandError(
                "--password-env: that is not an environment variable name; give the NAME of a variable holding the "
                "password (export VC_PASSWORD=...; --password-env VC_PASSWORD)"
            )
        password = os.environ.get(password_env)
        if password is None:
            raise CommandError(f"--password-env: the environment variable {password_env!r} is not set")
        if not password:
            raise CommandError(f"--password-env: the environment variable {password_env!r} is empty")
        return password

    def _add(self, name, url, user, password_env, no_verify_tls, ca_file, interval, **_):
        password = self._password(password_env)
        data = {"name": name, "url": url, "username": user, "password": password, "verify_tls": not no_verify_tls}
        data["ca_file"] = ca_file
        if interval is not None:
            data["sync_interval_minutes"] = interval
        serializer = VCenterCreateSerializer(data=data)
        try:
            serializer.is_valid(raise_exception=True)
            vcenter = serializer.save()
        except ValidationError as exc:
            raise CommandError(_option_errors(exc.detail)) from None
        except VCenterError as exc:
            raise CommandError(exc.message) from None
        tls = "verified" if vcenter.verify_tls else "NOT verified"
        self.stdout.write(
            f"Added vCenter {vcenter.name} ({vcenter.url}, TLS {tls}, sync every {vcenter.sync_interval_minutes} min)"
        )

    def _set(self, name, url, user, password_env, verify_tls, ca_file, interval, enabled, **_):
        vcenter = self._get(name)
        given = {"url": url, "username": user, "verify_tls": verify_tls, "ca_file": ca_file, "enabled": enabled,
                 "sync_interval_minutes": interval}  # fmt: skip
        data = {k: v for k, v in given.items() if v is not None}
        if password_env is not None:
            data["password"] = self._password(password_env)
        if not data:
            raise CommandError("nothing to change: give at least one of --url, --user, --password-env, --verify-tls, "
                               "--no-verify-tls, --ca-file, --interval, --enable, --disable")  # fmt: skip
        serializer = VCenterSerializer(instance=vcenter, data=data, partial=True)
        try:
            serializer.is_valid(raise_exception=True)
            vcenter = serializer.save()
        except ValidationError as exc:
            raise CommandError(_option_errors(exc.detail)) from None
        changed = ", ".join(ADD_OPTIONS.get(k, k) for k in data)
        tls = "verified" if vcenter.verify_tls else "NOT verified"
        state = "enabled" if vcenter.enabled else "disabled"
        self.stdout.write(
            f"Changed vCenter {vcenter.name} ({changed}): {vcenter.url}, TLS {tls}, "
            f"sync every {vcenter.sync_interval_minutes} min, {state}"
        )

    def _list(self, **_):
        rows = VCenter.objects.order_by("name")
        if not rows:
            self.stdout.write(
                "No vCenters. Add one with: manage.py vcenter add NAME --url ... --user ... --password-env VAR"
            )
        for vc in rows:
            stale = " (inventory stale)" if vc.inventory_stale else ""
            self.stdout.write(
                f"{vc.name}\t{vc.url}\t{'enabled' if vc.enabled else 'disabled'}\t"
                f"TLS {'verified' if vc.verify_tls else 'not verified'}\tlast sync {vc.last_sync_status}"
                f"{' at ' + vc.last_sync_at.isoformat() if vc.last_sync_at else ''}{stale}"
            )

    def _remove(self, name, **_):
        vcenter = self._get(name)
        effects = vcenter_removal_effects(vcenter)
        services.remove_vcenter(vcenter=vcenter)
        self.stdout.write(f"Removed vCenter {vcenter.name}")
        for text in effects:
            self.stdout.write(text)

    def _test(self, name, **_):
        vcenter = self._get(name)
        try:
            about = services.test_vcenter_connection(vcenter=vcenter)
        except VCenterError as exc:  # a connection failure, or a stored password no configured key decrypts
            raise CommandError(exc.message) from None
        self.stdout.write(f"{vcenter.name}: {about['full_name']} (API {about['api_version']}, {about['api_type']})")

    def _accept_new_identity(self, name, expect="", **_):
        vcenter = self._get(name)
        try:
            old, new = services.accept_new_identity(vcenter=vcenter, expected=expect)
        except services.IdentityUnchanged as exc:
            raise CommandError(f"accept-new-identity: {exc}") from None
        except VCenterError as exc:
            raise CommandError(f"accept-new-identity: {vcenter.name}: {exc.message}") from None
        self.stdout.write(
            f"{vcenter.name}: instance UUID {new} accepted (was {old or 'none'}). The next sync applies this "
            f"vCenter's inventory: run `manage.py vcenter sync {vcenter.name}` now or wait for the schedule."
        )

    def _rekey(self, **_):
        """After a key rotation (FIELD_ENCRYPTION_KEY=NEW,OLD): stored passwords stop depending on the old keys.
        One transaction: when any password no configured key reads, nothing is rewritten."""
        with transaction.atomic():
            stored = list(VCenter.objects.select_for_update().exclude(password_encrypted="").order_by("name"))
            unreadable = []
            rewritten: dict[int, str] = {}
            for vcenter in stored:
                if crypto.is_current(vcenter.password_encrypted):
                    continue
                try:
                    rewritten[vcenter.pk] = crypto.reencrypt(vcenter.password_encrypted)
                except crypto.SecretDecryptionError:
                    unreadable.append(vcenter.name)
            if unreadable:
                raise CommandError(
                    f"vCenter{'s' if len(unreadable) > 1 else ''} {', '.join(unreadable)}: {crypto.UNREADABLE}; "
                    "nothing was re-encrypted. Add the key it was stored with to FIELD_ENCRYPTION_KEY (after the "
                    "first), or enter the password again (vcenter set NAME --password-env VAR), then run vcenter "
                    "rekey again"
                )
            for pk, token in rewritten.items():
                VCenter.objects.filter(pk=pk).update(password_encrypted=token)
        without = VCenter.objects.filter(password_encrypted="").count()
        current = len(stored) - len(rewritten)
        self.stdout.write(
            f"Re-encrypted {_count(len(rewritten), 'vCenter password')} with the first key of FIELD_ENCRYPTION_KEY "
            f"({current} already encrypted with it, {_count(without, 'vCenter')} without a password)."
        )
        self.stdout.write(
            "Every stored password now reads with the first key alone: the other keys can be removed from "
            "FIELD_ENCRYPTION_KEY (keep them with the database dumps taken before now, which still need them)."
        )

    def _sync(self, name, queue=False, timeout=None, **_):
        """The same path as every trigger: one SyncRun, under the vCenter's lock; skipped (exit 1) when another
        sync of it is pending."""
        if timeout is not None and not 0 < timeout < float("inf"):  # NaN compares false too
            raise CommandError(f"--timeout: must be a number of seconds above 0, not {timeout:g}")
        vcenter = self._get(name)
        if queue and not settings.REDIS_URL:
            # The embedded mode has no worker to queue on: the same sync runs here, not through the eager broker.
            self.stderr.write("no task queue (REDIS_URL is not set): running the sync in this process")
            queue = False
        if queue:
            run = self._queued(vcenter, timeout)
        else:
            try:
                run = services.sync_vcenter(vcenter=vcenter, trigger=SyncRun.Trigger.CLI)
            except services.SyncSkipped as exc:
                raise CommandError(f"sync #{exc.run.pk} of {vcenter.name} {exc.run.error}") from None
            except services.SyncFailed as exc:
                raise CommandError(f"sync #{exc.run.pk} of {vcenter.name} failed: {exc.error.message}") from None
        c = run.counts
        self.stdout.write(
            f"Synced {vcenter.name} in {run.duration_s:.1f} s, {run.round_trips} round trips: "
            f"{c.get('seen_hosts', 0)} hosts, {c.get('seen_gpus', 0)} GPUs, {c.get('seen_vms', 0)} VMs; changed: "
            f"{changed_rows(c)} rows, "
            f"{c.get('warnings', 0)} warnings"
        )

    def _queued(self, vcenter: VCenter, timeout: float | None) -> SyncRun:
        from inventory import tasks

        with transaction.atomic():
            run = tasks.enqueue_sync(vcenter=vcenter, trigger=SyncRun.Trigger.CLI)
        run.refresh_from_db()  # sent on commit: an unreachable broker has marked the row failed meanwhile
        if run.finished and run.status != SyncStatus.SUCCESS:
            raise CommandError(f"sync #{run.pk} of {vcenter.name} failed: {run.error}")
        self.stderr.write(f"sync #{run.pk} of {vcenter.name}: {run.status}")
        if run.status == SyncStatus.QUEUED and ping_workers()["status"] != OK:
            # Without a worker nothing would change for the whole wait: say so now. The run stays queued for a
            # worker that starts later (the watchdog marks it lost after SYNC_QUEUE_TIMEOUT).
            message = f"sync #{run.pk} of {vcenter.name}: {NO_WORKER}"
            if timeout is None:
                raise CommandError(f"{message}; give --timeout SECONDS to wait for one")
            self.stderr.write(f"{message}; waiting up to {timeout:.0f} s (--timeout)")
        wait = timeout if timeout is not None else settings.CELERY_TASK_TIME_LIMIT + settings.SYNC_LOST_AFTER
        deadline = time.monotonic() + wait
        while True:
            run.refresh_from_db()
            if run.finished or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if run.status == SyncStatus.SUCCESS:
            return run
        if not run.finished:
            raise CommandError(f"sync #{run.pk} of {vcenter.name} is still {run.status} after {wait:.0f} s")
        verb = "failed:" if run.status == SyncStatus.FAILED else "was"
        raise CommandError(f"sync #{run.pk} of {vcenter.name} {verb} {run.error}")
