"""Serves the HTTP APIs moto holds, the way API Gateway does, on a path that needs no DNS:
``/http-api/{api_id}/{path}`` stands for ``https://{api_id}.execute-api.{region}.amazonaws.com/{path}``
(the ``$default`` stage, which has no path of its own).

A request is routed by its route key (``METHOD /path``, else ``$default``) to the route's
integration; with CORS in the API's configuration, API Gateway answers preflights itself and
puts its CORS headers on every answer in place of the function's; the stage's default route
settings throttle (429); a route with a JWT authorizer turns away a request without a valid
token (401, ``emulator/jwt_authorizer.py``) before the function runs; a Lambda proxy integration gets the payload 2.0 event and runs the
function, if the function's resource policy lets this API, stage, method and path invoke it
(else 500).

API Gateway developer guide: "Working with HTTP APIs", "Configuring CORS for an HTTP API",
"Throttling requests to your HTTP API", "Working with AWS Lambda proxy integrations for HTTP
APIs" (payload format 2.0), "Working with stages for HTTP APIs".
"""

from __future__ import annotations

import re
import threading

from emulator.function_urls import cors_of, function_answer, preflight, request_event, with_cors
from emulator.gateway import Request, TokenBucket, answer, function_of, may_invoke, partition_of, proxy_answer
from emulator.jwt_authorizer import UNAUTHORIZED, Refused, claims_of

HTTP_API = re.compile(r"^/http-api/([0-9a-z]+)(/.*)?$")

NOT_FOUND = (404, {"message": "Not Found"})
THROTTLED = (429, {"message": "Too Many Requests"})
NOT_PERMITTED = (500, {"message": "Internal Server Error"})


class HttpApis:
    def __init__(self, functions):
        self.functions = functions
        self.buckets: dict[tuple, TokenBucket] = {}
        self.lock = threading.Lock()

    def serve(self, environ) -> tuple[int, list, bytes] | None:
        """The answer to an HTTP API request, or ``None`` for any other path."""
        match = HTTP_API.match(environ.get("PATH_INFO", ""))
        if match is None:
            return None
        api_id, path = match.group(1), match.group(2) or "/"
        request = Request(environ, path)
        found = find_api(api_id)
        if found is None:
            return answer(*NOT_FOUND, request.request_id)
        account, region, api = found
        cors = cors_of(api.cors_configuration or {})
        stage = api.stages.get("$default")
        if stage is None:
            return self.own(NOT_FOUND, cors, request)
        if request.method == "OPTIONS" and cors and request.header("access-control-request-method"):
            return preflight(cors, request, status=204)
        route = route_of(api, request.method, path)
        if route is None:
            return self.own(NOT_FOUND, cors, request)
        if not self.allowed_by_throttle(api.api_id, stage):
            return self.own(THROTTLED, cors, request)
        authorizer = None
        if route.authorization_type == "JWT":
            try:
                claims = claims_of(api.authorizers[route.authorizer_id], request.header("authorization"))
            except Refused as refused:
                return self.own(UNAUTHORIZED, cors, request, [refused.header()])
            except KeyError:
                return self.own(NOT_PERMITTED, cors, request)
            authorizer = {"jwt": {"claims": {name: str(value) for name, value in claims.items()}, "scopes": None}}
        integration = api.integrations.get((route.target or "").removeprefix("integrations/"))
        function = function_of_arn(integration, account)
        source = f"arn:{partition_of(region)}:execute-api:{region}:{account}:{api.api_id}/$default/{request.method}{path}"
        if function is None or not may_invoke(function, source):
            return self.own(NOT_PERMITTED, cors, request)
        event = request_event(
            request,
            {
                "accountId": account,
                "apiId": api.api_id,
                "domainName": f"{api.api_id}.execute-api.{region}.amazonaws.com",
                "domainPrefix": api.api_id,
                "routeKey": route.route_key,
            },
        )
        if authorizer is not None:
            event["requestContext"]["authorizer"] = authorizer
        outcome, _took, _stream = self.functions.invoke(account, region, function, event)
        served = proxy_answer(function_answer(outcome.payload), request.request_id) if outcome.kind == "response" else None
        if served is None:
            return self.own(NOT_PERMITTED, cors, request)
        status, headers, data = served
        return status, with_cors(headers, cors, request), data

    def own(self, kind, cors: dict, request: Request, headers: list | None = None):
        status, headers, data = answer(*kind, request.request_id, headers)
        return status, with_cors(headers, cors, request), data

    def allowed_by_throttle(self, api_id: str, stage) -> bool:
        settings = stage.default_route_settings or {}
        rate, burst = settings.get("throttlingRateLimit"), settings.get("throttlingBurstLimit")
        if rate is None or burst is None:
            return True
        key = (api_id, float(rate), int(burst))
        with self.lock:
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = TokenBucket(float(rate), int(burst))
            return bucket.take()


def find_api(api_id: str):
    from moto.apigatewayv2.models import apigatewayv2_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    for region, backend in list(apigatewayv2_backends[DEFAULT_ACCOUNT_ID].items()):
        api = backend.apis.get(api_id)
        if api is not None:
            return DEFAULT_ACCOUNT_ID, region, api
    return None


def route_of(api, method: str, path: str):
    """The route for ``METHOD path``: its own key first, then ``ANY path``, then ``$default``."""
    routes = {route.route_key: route for route in api.routes.values()}
    return routes.get(f"{method} {path}") or routes.get(f"ANY {path}") or routes.get("$default")


def function_of_arn(integration, account: str):
    """The function a Lambda proxy integration names (an ARN, as HTTP APIs take it)."""
    if integration is None or integration.integration_type != "AWS_PROXY":
        return None
    uri = integration.integration_uri or ""
    return function_of(f"/functions/{uri}", account) if uri.startswith("arn:") else function_of(uri, account)
