"""Timers: the reconciler picks up every file the events missed, within a time budget; the
export writes the profiles as a CDM folder on its own schedule."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.functions as func

from shared import bootstrap
from shared.core.audiences import upkeep
from shared.core.export.profiles import export_snapshot
from shared.core.ingest.reconciler import reconcile

log = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.function_name("reconcile")
@bp.timer_trigger(
    arg_name="timer",
    schedule="%FOOTPRINT_RECONCILE_SCHEDULE%",
    run_on_startup=False,
    use_monitor=True,
)
def reconcile_timer(timer: func.TimerRequest) -> None:
    rt = bootstrap.runtime()
    if timer.past_due:
        log.warning("reconcile timer is past due")
    budget = rt.settings.reconcile_budget_seconds
    # The files, then the measures and segments they and the time passed left to evaluate.
    reconcile(rt.ports, rt.config, rt.options, budget_seconds=budget)
    publish_audience_changes(rt)


def publish_audience_changes(rt: bootstrap.Runtime) -> None:
    """Put on the activation queue the membership changes not put yet."""
    audiences = bootstrap.audiences_of(rt.config)
    store = bootstrap.open_audiences(rt.ports.store)
    queue = bootstrap.open_change_queue(rt.settings)
    if queue is not None:
        # After an outage too: what the last attempts could not put goes now, in order.
        put = upkeep.publish_changes(store, audiences, queue)
        if put:
            log.info("audiences: %d membership changes put on queue %s", put, rt.settings.segment_queue)


@bp.function_name("export")
@bp.timer_trigger(
    arg_name="timer", schedule="%FOOTPRINT_EXPORT_SCHEDULE%", run_on_startup=False, use_monitor=True
)
def export_timer(timer: func.TimerRequest) -> None:
    rt = bootstrap.runtime()
    if not rt.settings.export_target:
        log.info("export timer: FOOTPRINT_EXPORT_TARGET is not set, nothing exported")
        return
    target = bootstrap.open_export_target(rt.settings.export_target, rt.settings)
    audiences = bootstrap.audience_export(rt.ports.store, rt.config)
    folder = export_snapshot(rt.ports.store, audiences, target, datetime.now(UTC))  # type: ignore[arg-type]
    log.info("export timer: wrote %s/%s and pointed latest.json at it", rt.settings.export_target, folder)
