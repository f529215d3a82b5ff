"""Serves the function URLs moto holds, the way Lambda does, on a path that needs no DNS:
``/lambda-url/{url_id}/{path}`` stands for ``https://{url_id}.lambda-url.{region}.on.aws/{path}``.

A request reaches the function only if its URL's auth type is NONE and its resource policy
grants both what Lambda asks of a public URL since October 2025 (``lambda:InvokeFunctionUrl``
with ``lambda:FunctionUrlAuthType`` NONE, and ``lambda:InvokeFunction`` with
``lambda:InvokedViaFunctionUrl`` true); else 403, as Lambda answers. The function gets the
payload 2.0 event of a function URL. With CORS in the URL's configuration, Lambda answers
preflights itself and puts its own CORS headers on every answer in place of the function's.
The function's reserved concurrency bounds the requests in flight: one more is 429.

Lambda developer guide: "Lambda function URLs", "Control access to Lambda function URLs",
"Invoking Lambda function URLs" (request and response payloads), "Creating and managing
Lambda function URLs" (CORS), "Lambda function scaling" (throttling); API reference: Cors.
"""

from __future__ import annotations

import re
import threading
import time

from emulator.gateway import Request, answer, proxy_answer

FUNCTION_URL = re.compile(r"^/lambda-url/([0-9a-z]+)(/.*)?$")

FORBIDDEN = (403, {"Message": "Forbidden"})
THROTTLED = (429, {"Message": "Rate Exceeded."})
FAILED = (502, {"Message": "Internal Server Error"})


class FunctionUrls:
    def __init__(self, functions):
        self.functions = functions
        self.in_flight: dict[str, int] = {}
        self.lock = threading.Lock()

    def serve(self, environ) -> tuple[int, list, bytes] | None:
        """The answer to a function-URL request, or ``None`` for any other path."""
        match = FUNCTION_URL.match(environ.get("PATH_INFO", ""))
        if match is None:
            return None
        url_id, path = match.group(1), match.group(2) or "/"
        request = Request(environ, path)
        found = find_function(url_id)
        if found is None:
            return answer(404, {"Message": "Not Found"}, request.request_id)
        account, region, function = found
        config = function.url_config.config
        cors = cors_of(config.get("Cors") or {})
        if request.method == "OPTIONS" and cors and request.header("access-control-request-method"):
            return preflight(cors, request, status=200)
        if config.get("AuthType") != "NONE" or not public(function):
            return self.own(FORBIDDEN, cors, request)
        if not self.enter(function):
            return self.own(THROTTLED, cors, request)
        try:
            context = {"apiId": url_id, "domainName": f"{url_id}.lambda-url.{region}.on.aws", "domainPrefix": url_id}
            event = request_event(request, context)
            outcome, _took, _stream = self.functions.invoke(account, region, function, event)
        finally:
            self.leave(function)
        served = proxy_answer(function_answer(outcome.payload), request.request_id) if outcome.kind == "response" else None
        if served is None:
            return self.own(FAILED, cors, request)
        status, headers, data = served
        return status, with_cors(headers, cors, request), data

    def own(self, kind, cors: dict, request: Request):
        status, body = kind
        served = answer(status, body, request.request_id, [("x-amzn-ErrorType", "AccessDeniedException" if status == 403 else "TooManyRequestsException" if status == 429 else "ServiceException")])
        return served[0], with_cors(served[1], cors, request), served[2]

    def enter(self, function) -> bool:
        """Takes one of the function's reserved instances; ``False`` when all are busy."""
        reserved = function.reserved_concurrency
        with self.lock:
            busy = self.in_flight.get(function.function_arn, 0)
            if reserved is not None and busy >= int(reserved):
                return False
            self.in_flight[function.function_arn] = busy + 1
            return True

    def leave(self, function):
        with self.lock:
            self.in_flight[function.function_arn] -= 1


def find_function(url_id: str):
    from moto.awslambda.models import lambda_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    for region, backend in list(lambda_backends[DEFAULT_ACCOUNT_ID].items()):
        for function in list(backend.list_functions()):
            config = getattr(function, "url_config", None)
            if config is not None and config.url.startswith(f"https://{url_id}."):
                return DEFAULT_ACCOUNT_ID, region, function
    return None


def public(function) -> bool:
    """The resource policy grants both of a public URL's permissions."""
    statements = getattr(getattr(function, "policy", None), "statements", None) or []

    def grants(action: str, operator: str, key: str, value: str) -> bool:
        for statement in statements:
            actions = statement.get("Action")
            actions = actions if isinstance(actions, list) else [actions]
            principal = statement.get("Principal")
            anyone = principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*")
            condition = (statement.get("Condition") or {}).get(operator) or {}
            if statement.get("Effect") == "Allow" and anyone and action in actions and str(condition.get(key)).lower() == value:
                return True
        return False

    return grants("lambda:InvokeFunctionUrl", "StringEquals", "lambda:FunctionUrlAuthType", "none") and grants(
        "lambda:InvokeFunction", "Bool", "lambda:InvokedViaFunctionUrl", "true"
    )


def request_event(request: Request, context: dict) -> dict:
    """A payload 2.0 event, as a function URL or an HTTP API sends it: headers lowercased,
    repeated ones joined by commas, cookies apart; ``context`` names the API (``apiId``,
    ``domainName``, ``domainPrefix``, and for an HTTP API ``accountId`` and ``routeKey``)."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query: dict[str, str] = {}
    for pair in filter(None, request.query.split("&")):
        name, _, value = pair.partition("=")
        query[name] = f"{query[name]},{value}" if name in query else value
    body, encoded = None, False
    if request.body:
        try:
            body = request.body.decode("utf-8")
        except UnicodeDecodeError:
            import base64

            body, encoded = base64.b64encode(request.body).decode(), True
    now = time.time()
    event = {
        "version": "2.0",
        "routeKey": context.get("routeKey", "$default"),
        "rawPath": request.path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": {
            "accountId": context.get("accountId", "anonymous"),
            "apiId": context["apiId"],
            "domainName": context["domainName"],
            "domainPrefix": context["domainPrefix"],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": request.header("user-agent") or "",
            },
            "requestId": request.request_id,
            "routeKey": context.get("routeKey", "$default"),
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body,
        "isBase64Encoded": encoded,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    return event


def function_answer(payload):
    """The function's answer as Lambda reads it: a JSON object with ``statusCode``, or any other
    JSON taken as a 200 body."""
    import json

    if isinstance(payload, dict) and "statusCode" in payload:
        return payload
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(payload)}


def origin_allowed(cors: dict, origin: str | None) -> str | None:
    """The ``Access-Control-Allow-Origin`` the URL's CORS gives ``origin``, if any."""
    if not origin:
        return None
    origins = cors.get("AllowOrigins") or []
    if "*" in origins:
        return "*"
    return origin if any(o.lower() == origin.lower() for o in origins) else None


def cors_of(configured: dict) -> dict:
    """A CORS configuration with the keys a function URL's has (``AllowOrigins``, ...), from
    either that or an HTTP API's (``allowOrigins``, ...)."""
    return {key[0].upper() + key[1:]: value for key, value in configured.items() if value is not None}


def preflight(cors: dict, request: Request, status: int):
    """The gateway's own answer to a preflight (a function URL answers 200, an HTTP API 204):
    the allowed origin, methods, headers and age, or none of them for an origin or method not
    allowed."""
    allowed = origin_allowed(cors, request.header("origin"))
    method = (request.header("access-control-request-method") or "").upper()
    methods = [m.upper() for m in cors.get("AllowMethods") or []]
    headers = []
    if allowed and (method in methods or "*" in methods):
        headers = [
            ("Access-Control-Allow-Origin", allowed),
            ("Access-Control-Allow-Methods", ",".join(methods)),
            ("Access-Control-Allow-Headers", ",".join(cors.get("AllowHeaders") or [])),
            ("Access-Control-Max-Age", str(cors.get("MaxAge") or 0)),
            ("Vary", "Origin"),
        ]
    return status, [("x-amzn-RequestId", request.request_id)] + headers, b""


def with_cors(headers: list, cors: dict, request: Request) -> list:
    """An answer's headers with the URL's CORS in place of the function's own."""
    if not cors:
        return headers
    kept = [(name, value) for name, value in headers if not name.lower().startswith("access-control-")]
    allowed = origin_allowed(cors, request.header("origin"))
    if allowed:
        kept.append(("Access-Control-Allow-Origin", allowed))
        if cors.get("ExposeHeaders"):
            kept.append(("Access-Control-Expose-Headers", ",".join(cors["ExposeHeaders"])))
        kept.append(("Vary", "Origin"))
    return kept
