"""Azure Functions blueprints: translate a trigger's input, call a service, translate back."""

import azure.functions as func

from shared.triggers import audiences, events, http, identity_http, rights, timer, ui

BLUEPRINTS = (events.bp, timer.bp, http.bp, audiences.bp, rights.bp, identity_http.bp, ui.bp)


def build_app() -> func.FunctionApp:
    app = func.FunctionApp()
    for blueprint in BLUEPRINTS:
        app.register_functions(blueprint)
    return app
