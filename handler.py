"""FunctionGraph entry point (configured as `handler.handler`): parse, dispatch, return."""

from dcs_maintenance.app import handle


def handler(event, context):
    return handle(event, context)
