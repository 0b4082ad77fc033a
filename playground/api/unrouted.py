"""The requests that no route of the API takes, answered in the API's error shape: a path of the API with a method
it does not have gets 405 and ``Allow``; an unknown path under ``/v1/`` gets 404. The rest goes on to the page."""

import functools

from fastapi.routing import iter_route_contexts

from .errors import error_response

API_PREFIX = "/v1/"


class Unrouted:
    """ASGI middleware in front of the app whose ``routes`` (the page's mount aside) make the API."""

    def __init__(self, app, routes: list):
        self.app = app
        self.routes = routes

    async def __call__(self, scope, receive, send):
        refusal = self.refusal(scope["method"], scope["path"]) if scope["type"] == "http" else None
        await (refusal or self.app)(scope, receive, send)

    @functools.cached_property
    def methods(self) -> list[tuple]:
        """(path pattern, methods) of each route, read once they are all in place (at the first request)."""
        return [(route.path_regex, route.methods) for route in iter_route_contexts(self.routes) if route.methods]

    def refusal(self, method: str, path: str):
        """The error answer to ``method path`` when no route takes it, else None."""
        allowed = set()
        for pattern, methods in self.methods:
            if pattern.match(path):
                if method in methods:
                    return None
                allowed |= methods
        if allowed:
            response = error_response(405, f"{path} does not take {method}: use {', '.join(sorted(allowed))}.")
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return response
        if path.startswith(API_PREFIX):
            return error_response(404, f"No route {path}: see /docs for the API.")
        return None
