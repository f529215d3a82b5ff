"""Serves the REST APIs moto holds at their invoke URLs, the way API Gateway does, on the path
LocalStack uses (no DNS needed): ``/restapis/{api_id}/{stage}/_user_request_/{path}``.

A request is routed by the resources and methods of the deployment its stage serves (as they
were when deployed); a method that wants an API key checks ``x-api-key`` against the enabled
keys of the usage plans bound to the stage; the stage's throttling applies; a Lambda proxy
integration gets the REST API proxy event (payload 1.0) and runs the function, if the function's
resource policy lets this API, stage, method and path invoke it. API Gateway's own answers (no
route, no key, throttled, the function failed) carry the API's gateway responses.

API Gateway developer guide: "Invoking a REST API", "Set up Lambda proxy integrations"
("Input format of a Lambda function for proxy integration", "Output format"), "Choose an API
key source", "Throttle requests to your REST APIs", "Gateway response types", "Control access
to a REST API with Lambda resource-based policies"; LocalStack's docs for the URL form.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import json
import re
import threading
import time
import urllib.parse
import uuid

USER_REQUEST = re.compile(r"^/restapis/([^/]+)/([^/]+)/_user_request_(/.*)?$")

# The gateway responses AWS answers with by default: type -> (status, message).
MISSING_ROUTE = ("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token")
NO_KEY = ("INVALID_API_KEY", 403, "Forbidden")
THROTTLED = ("THROTTLED", 429, "Too Many Requests")
NOT_PERMITTED = ("API_CONFIGURATION_ERROR", 500, "Internal server error")
FUNCTION_FAILED = ("DEFAULT_5XX", 502, "Internal server error")
TIMED_OUT = ("INTEGRATION_TIMEOUT", 504, "Endpoint request timed out")


def snapshot(api) -> dict:
    """What a deployment serves: the API's routes and gateway responses as they are now."""
    routes = {}
    for resource in api.resources.values():
        methods = {}
        for verb, method in resource.resource_methods.items():
            integration = method.method_integration
            methods[verb] = {
                "resource_id": resource.id,
                "api_key_required": bool(method.api_key_required),
                "integration_type": integration.integration_type if integration else None,
                "uri": integration.uri if integration else None,
            }
        routes[resource.get_path()] = methods
    responses = {
        kind: {
            "status": response.status_code,
            "parameters": dict(response.response_parameters or {}),
            "templates": dict(response.response_templates or {}),
        }
        for kind, response in api.gateway_responses.items()
    }
    return {"routes": routes, "responses": responses}


class TokenBucket:
    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.updated = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Gateway:
    def __init__(self, functions):
        self.functions = functions
        self.buckets: dict[tuple, TokenBucket] = {}
        self.lock = threading.Lock()

    def serve(self, environ) -> tuple[int, list, bytes] | None:
        """The answer to an invoke-URL request, or ``None`` for any other path."""
        match = USER_REQUEST.match(environ.get("PATH_INFO", ""))
        if match is None:
            return None
        api_id, stage_name, path = match.group(1), match.group(2), match.group(3) or "/"
        request = Request(environ, path)
        found = find_api(api_id)
        if found is None:
            return answer(404, {"message": "Not Found"}, request.request_id)
        account, region, backend, api = found
        stage = api.stages.get(stage_name)
        deployment = api.deployments.get(stage.deployment_id) if stage else None
        served = getattr(deployment, "_td_snapshot", None) if deployment else None
        if served is None:
            return answer(403, {"message": "Forbidden"}, request.request_id)
        gateway = Responses(served["responses"], request)
        route = route_of(served["routes"], path, request.method)
        if route is None:
            return gateway.error(MISSING_ROUTE)
        resource_path, method = route
        if method["api_key_required"] and not key_allows(backend, api_id, stage_name, request.header("x-api-key")):
            return gateway.error(NO_KEY)
        if not self.allowed_by_throttle(api_id, stage, resource_path, request.method):
            return gateway.error(THROTTLED)
        if method["integration_type"] != "AWS_PROXY":
            return gateway.error(NOT_PERMITTED)
        function = function_of(method["uri"], account)
        event = request.proxy_event(account, api_id, stage_name, resource_path, method["resource_id"])
        source = f"arn:{partition_of(region)}:execute-api:{region}:{account}:{api_id}/{stage_name}/{request.method}{path}"
        if function is None or not may_invoke(function, source):
            return gateway.error(NOT_PERMITTED)
        outcome, _took, _stream = self.functions.invoke(account, region, function, event)
        if outcome.kind == "timeout" and float(function.timeout or 3) >= 29:
            return gateway.error(TIMED_OUT)
        if outcome.kind != "response":
            return gateway.error(FUNCTION_FAILED)
        return proxy_answer(outcome.payload, request.request_id) or gateway.error(FUNCTION_FAILED)

    def allowed_by_throttle(self, api_id: str, stage, resource_path: str, verb: str) -> bool:
        """The stage's limits: a method's own setting, else every method's (``*/*``)."""
        settings = stage.method_settings or {}
        own = settings.get(f"{resource_path.lstrip('/').replace('/', '~1')}/{verb}")
        limits = own or settings.get("*/*")
        if not limits:
            return True
        rate, burst = float(limits.get("throttlingRateLimit", 0)), int(limits.get("throttlingBurstLimit", 0))
        key = (api_id, stage.name, resource_path if own else "*", verb if own else "*", rate, burst)
        with self.lock:
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = TokenBucket(rate, burst)
            return bucket.take()


class Request:
    def __init__(self, environ, path: str):
        self.method = environ["REQUEST_METHOD"].upper()
        self.path = path
        self.request_id = str(uuid.uuid4())
        self.query = environ.get("QUERY_STRING", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.body = environ["wsgi.input"].read(length) if length > 0 else b""
        self.headers: list[tuple[str, str]] = []
        for name, value in environ.items():
            if name.startswith("HTTP_"):
                self.headers.append((name[5:].replace("_", "-").title(), value))
            elif name in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                self.headers.append((name.replace("_", "-").title(), value))
        self.source_ip = environ.get("REMOTE_ADDR", "127.0.0.1")

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def proxy_event(self, account: str, api_id: str, stage: str, resource_path: str, resource_id: str) -> dict:
        headers, multi = {}, {}
        for name, value in self.headers:
            headers[name] = value
            multi.setdefault(name, []).append(value)
        pairs = urllib.parse.parse_qsl(self.query, keep_blank_values=True)
        query, multi_query = {}, {}
        for name, value in pairs:
            query[name] = value
            multi_query.setdefault(name, []).append(value)
        proxy = self.path.lstrip("/")
        text = None
        encoded = False
        if self.body:
            try:
                text = self.body.decode("utf-8")
            except UnicodeDecodeError:
                text, encoded = base64.b64encode(self.body).decode(), True
        now = time.time()
        return {
            "resource": resource_path,
            "path": self.path,
            "httpMethod": self.method,
            "headers": headers or None,
            "multiValueHeaders": multi or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": {"proxy": proxy} if "{proxy+}" in resource_path else None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": resource_id,
                "resourcePath": resource_path,
                "httpMethod": self.method,
                "extendedRequestId": self.request_id[:16],
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "path": f"/{stage}{self.path}",
                "accountId": account,
                "protocol": "HTTP/1.1",
                "stage": stage,
                "domainPrefix": api_id,
                "requestTimeEpoch": int(now * 1000),
                "requestId": self.request_id,
                "identity": {"sourceIp": self.source_ip, "userAgent": self.header("user-agent")},
                "domainName": f"{api_id}.execute-api.localhost",
                "apiId": api_id,
            },
            "body": text,
            "isBase64Encoded": encoded,
        }


class Responses:
    """API Gateway's own answers, shaped by the API's gateway responses."""

    def __init__(self, configured: dict, request: Request):
        self.configured, self.request = configured, request

    def error(self, kind: tuple) -> tuple[int, list, bytes]:
        response_type, status, message = kind
        fallback = "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
        configured = self.configured.get(response_type) or self.configured.get(fallback) or {}
        status = int(configured.get("status") or status)
        headers = [("x-amzn-ErrorType", _error_type(status))]
        for key, value in (configured.get("parameters") or {}).items():
            if not key.startswith("gatewayresponse.header."):
                continue
            resolved = self.value_of(value)
            if resolved is not None:
                headers.append((key[len("gatewayresponse.header."):], resolved))
        template = (configured.get("templates") or {}).get("application/json")
        body = template.replace("$context.error.messageString", json.dumps(message)) if template else json.dumps({"message": message})
        return answer(status, body, self.request.request_id, headers)

    def value_of(self, mapping: str) -> str | None:
        if mapping.startswith("'") and mapping.endswith("'") and len(mapping) >= 2:
            return mapping[1:-1]
        if mapping.startswith("method.request.header."):
            return self.request.header(mapping[len("method.request.header."):])
        return None


def _error_type(status: int) -> str:
    return {403: "ForbiddenException", 429: "TooManyRequestsException", 404: "NotFoundException"}.get(
        status, "InternalServerErrorException" if status >= 500 else "BadRequestException"
    )


def answer(status: int, body, request_id: str, headers: list | None = None) -> tuple[int, list, bytes]:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    data = data.encode() if isinstance(data, str) else data
    base = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)]
    return status, base + (headers or []), data


def proxy_answer(payload, request_id: str):
    """The function's proxy answer as an HTTP answer; ``None`` when it is malformed (API Gateway
    then answers 502)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("statusCode"), int):
        return None
    headers = [("x-amzn-RequestId", request_id)]
    single = payload.get("headers") or {}
    multi = payload.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        return None
    for name, values in multi.items():
        headers.extend((name, str(value)) for value in values or [])
    headers.extend((name, str(value)) for name, value in single.items() if name not in multi)
    body = payload.get("body") or ""
    data = base64.b64decode(body) if payload.get("isBase64Encoded") else str(body).encode()
    return payload["statusCode"], headers, data


def find_api(api_id: str):
    from moto.apigateway.models import apigateway_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    for region, backend in list(apigateway_backends[DEFAULT_ACCOUNT_ID].items()):
        api = backend.apis.get(api_id)
        if api is not None:
            return DEFAULT_ACCOUNT_ID, region, backend, api
    return None


def route_of(routes: dict, path: str, verb: str):
    """The resource path and method serving ``verb path``: an exact resource first, then the
    one whose ``{name+}`` takes the rest of the path; the method itself, or ``ANY``."""
    candidates = []
    for resource_path, methods in routes.items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\+\\\}", ".+", re.sub(r"\\\{[^/+]+?\\\}", "[^/]+", re.escape(resource_path))) + "$"
        if re.match(pattern, path):
            greedy = "+}" in resource_path
            candidates.append((greedy, -len(resource_path), resource_path, methods))
    for _, _, resource_path, methods in sorted(candidates):
        method = methods.get(verb) or methods.get("ANY")
        if method is not None:
            return resource_path, method
        return None  # the most specific resource decides, as API Gateway routes
    return None


def key_allows(backend, api_id: str, stage: str, value: str | None) -> bool:
    if not value:
        return False
    key = next((key for key in backend.keys.values() if key.value == value), None)
    if key is None or not key.enabled:
        return False
    for plan_id, plan in backend.usage_plans.items():
        bound = any(s.get("apiId") == api_id and s.get("stage") == stage for s in plan.api_stages or [])
        if bound and key.id in (backend.usage_plan_keys.get(plan_id) or {}):
            return True
    return False


def function_of(uri: str | None, account: str):
    """The function a Lambda proxy integration's URI names."""
    from moto.awslambda.models import lambda_backends

    match = re.search(r"/functions/(arn:[^:]+:lambda:([^:]+):[^:]+:function:[^/:]+)", uri or "")
    if match is None:
        return None
    arn, region = match.group(1), match.group(2)
    try:
        return lambda_backends[account][region].get_function(arn)
    except Exception:
        return None


def partition_of(region: str) -> str:
    from moto.utilities.utils import get_partition

    return get_partition(region)


def may_invoke(function, source_arn: str) -> bool:
    """The function's resource policy lets API Gateway invoke it from ``source_arn``."""
    policy = getattr(function, "policy", None)
    statements = copy.deepcopy(getattr(policy, "statements", None) or [])
    for statement in statements:
        principal = statement.get("Principal")
        service = principal.get("Service") if isinstance(principal, dict) else principal
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if statement.get("Effect") != "Allow" or service not in ("apigateway.amazonaws.com", "*"):
            continue
        if not any(a in ("lambda:InvokeFunction", "lambda:*") for a in actions):
            continue
        # A function URL's grant holds only for requests through the URL.
        if "lambda:InvokedViaFunctionUrl" in ((statement.get("Condition") or {}).get("Bool") or {}):
            continue
        condition = (statement.get("Condition") or {}).get("ArnLike") or {}
        pattern = condition.get("AWS:SourceArn")
        if pattern is None or fnmatch.fnmatchcase(source_arn, pattern):
            return True
    return False
