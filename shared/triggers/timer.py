"""The reconciler timer: picks up every file the events missed, within a time budget."""

from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap
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
    reconcile(rt.ports, rt.config, rt.options, budget_seconds=rt.settings.reconcile_budget_seconds)
