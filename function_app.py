"""The Footprint Functions app: registers the blueprints, nothing else."""

import azure.functions as func

from shared.triggers import BLUEPRINTS

app = func.FunctionApp()
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
