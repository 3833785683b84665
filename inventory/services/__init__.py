"""Writes to the inventory: registering vCenters, syncing them, applying snapshots, importing documents.

One module per part, each importing what it uses from the others (the arrows point one way):

- ``vcenters``: registering, changing, testing and removing vCenters; their beat schedules; the server lock.
- ``columns``: ``fit_to_columns``, fitting a snapshot's texts to the columns that store them.
- ``apply``: ``apply_snapshot``, the one place a collected or imported inventory becomes rows.
- ``identity``: a vCenter's instance UUID: the checks a sync makes, ``accept_new_identity``.
- ``reaping``: the watchdog, marking ``lost`` the runs whose worker died or whose task message is gone.
- ``purging``: retention of stale objects and of the sync history.
- ``syncs``: requesting, cancelling and skipping runs; collecting; ``sync_vcenter`` under its lock and heartbeat.
- ``importing``: ``import_inventory``, a document as the inventory of an offline vCenter.

Callers use the names below through the package (``services.sync_vcenter``). A test that replaces a name a service
looks up patches the module that looks it up (``syncs``, ``columns``, ...), not the package: the tunables
``UNSENT_RECHECK_SECONDS`` (``reaping``) and ``PURGE_BATCH`` (``purging``) are left out here so that such a patch
fails instead of changing nothing.
"""

from inventory.services.apply import apply_snapshot
from inventory.services.columns import fit_to_columns
from inventory.services.identity import IdentityUnchanged, accept_new_identity, identity_changed_message
from inventory.services.importing import ImportTargetError, import_inventory
from inventory.services.purging import purge_stale, purge_sync_history
from inventory.services.reaping import reap_before_reading, reap_lost_syncs, reap_unsent_syncs
from inventory.services.syncs import (
    CANCELLED_PREFIX,
    NotCancellable,
    SyncFailed,
    SyncSkipped,
    UnstorableInventory,
    cancel_sync,
    collect_from_vcenter,
    request_sync,
    skip_run,
    start_sync_run,
    sync_vcenter,
)
from inventory.services.vcenters import (
    SYNC_TASK,
    VCENTER_FIELDS,
    PasswordUnreadable,
    endpoint_for,
    lock_vcenter_servers,
    register_vcenter,
    remove_vcenter,
    schedule_vcenter_sync,
    test_vcenter_connection,
    unschedule_vcenter_sync,
    update_vcenter,
)

__all__ = [
    "CANCELLED_PREFIX",
    "SYNC_TASK",
    "VCENTER_FIELDS",
    "IdentityUnchanged",
    "ImportTargetError",
    "NotCancellable",
    "PasswordUnreadable",
    "SyncFailed",
    "SyncSkipped",
    "UnstorableInventory",
    "accept_new_identity",
    "apply_snapshot",
    "cancel_sync",
    "collect_from_vcenter",
    "endpoint_for",
    "fit_to_columns",
    "identity_changed_message",
    "import_inventory",
    "lock_vcenter_servers",
    "purge_stale",
    "purge_sync_history",
    "reap_before_reading",
    "reap_lost_syncs",
    "reap_unsent_syncs",
    "register_vcenter",
    "remove_vcenter",
    "request_sync",
    "schedule_vcenter_sync",
    "skip_run",
    "start_sync_run",
    "sync_vcenter",
    "test_vcenter_connection",
    "unschedule_vcenter_sync",
    "update_vcenter",
]
