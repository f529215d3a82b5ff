"""Run moto's server answering as AWS does where moto is kinder, each fix naming the AWS page it
follows (docs/aws-behaviours.md lists them with the tests that rely on them):

- IAM enforcement checks the signature over the bytes a client sent (below);
- under enforcement, the permissions AWS checks beside a call's own action: iam:PassRole and
  tagging on create, and lambda:ListTags, without which GetFunction withholds the tags;
- Lambda: UpdateFunctionCode honours Architectures; a function can be made idle (Inactive) or
  its last update Failed, as AWS does over time, and an update to an idle one passes through
  Pending; updates are refused while Pending;
- Secrets Manager frees the name of a secret deleted without recovery only after a moment;
- API Gateway's CreateDeployment to an existing stage keeps that stage's settings, and
  remembers what it deployed;

and serves what moto only stores: the deployed REST APIs at their invoke URLs, in LocalStack's
form ``/restapis/{api_id}/{stage}/_user_request_/{path}`` (emulator/gateway.py), running the
functions they integrate as Lambda runs them, logs to CloudWatch Logs included
(emulator/functions.py).

Usage (same arguments as ``python -m moto.server``)::

    MOTO_IAM_LOAD_MANAGED_POLICIES=true \\
    python crates/testkit/moto_server.py -H 127.0.0.1 -p PORT

then switch enforcement on once the set-up calls are done (or set INITIAL_NO_AUTH_ACTION_COUNT)::

    curl -X POST -H 'Content-Type: text/plain' --data 0 http://127.0.0.1:PORT/moto-api/reset-auth

(``0``: check every later call; ``inf``: check none. The Content-Type matters: moto reads the raw
body, which werkzeug empties for a form-encoded one, and the call then fails with a 500.)

What it patches, and why
------------------------
With enforcement on, moto recomputes each request's SigV4 signature in
``moto/iam/access_control.py: IAMRequestBase._create_aws_request``, which builds the request it
signs with ``data=self._body or self._data``. The ``self._data`` fallback exists for form-encoded
(Query protocol: IAM, STS, ...) POSTs, whose body werkzeug has consumed into ``request.form``, so
the raw body arrives empty and the form fields stand in for it. But when a request has *no body at
all* (a REST GET or DELETE: Lambda's ListFunctions, GetFunction, GetPolicy, DeleteFunction, API
Gateway's GetRestApis, ...), ``self._data`` is whatever
``moto/core/responses.py: BaseResponse.setup_class`` put in the querystring: the URL's query
parameters, or, when there are none, *the request headers*. botocore then URL-encodes that dict as
the body, so the payload hash moto signs is not the empty body's hash, and every such call fails
with 403 ``SignatureDoesNotMatch`` even when the caller's policy allows it. (POSTs with a JSON body,
such as Lambda's CreateFunction and AddPermission, and all Query-protocol POSTs are not affected.)

The patch replaces that one method: when the request carries no body (no positive
``Content-Length`` and no ``Transfer-Encoding``), it signs an empty body; otherwise it behaves
exactly as moto does. Nothing else in moto changes: which actions are checked, against which
resource, and the errors returned are moto's own.

Measured against moto 5.2.5 (botocore 1.44.5). The patch refuses to start on a moto whose
``IAMRequestBase`` no longer has ``_create_aws_request`` or whose method no longer reads
``self._body or self._data``, since then the cause may have been fixed or moved.

Optional: with ``MOTO_ENFORCING_LOG=/path/file.jsonl`` set, every authorization decision moto makes
is appended there as one JSON line: {"action", "resource", "principal", "allowed", "error"}.
``resource`` is the ARN moto checked, which is "*" for every service but IAM role operations,
STS AssumeRole and SQS (moto 5.2.5 checks no other resource). Only calls whose signature and
access key moto accepted reach this check; SignatureDoesNotMatch and InvalidClientTokenId are not
logged. Do not pass ``-r``/``--reload``: the reloader starts a fresh interpreter without the patch.

Test hooks (AWS changes these only over time, or by its own hand)::

    POST /_tokendeploy/lambda-state  {"Region": "us-west-1", "FunctionName": "f",
                                      "State": "Inactive"}            # idle, as after weeks
                                     {..., "LastUpdateStatus": "Failed",
                                      "LastUpdateStatusReason": "..."} # a failed last update

``MOTO_SECRET_NAME_FREED_AFTER`` (seconds, default 2): how long the name of a secret deleted
without recovery stays taken.
"""

from __future__ import annotations

import atexit
import inspect
import io
import json
import os
import sys
import threading
import time
import urllib.parse
from http import HTTPStatus

# The emulator's modules beside this file (emulator/): the invoke URLs and the functions.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _request_has_body(headers) -> bool:
    if headers.get("Transfer-Encoding"):
        return True
    try:
        return int(headers.get("Content-Length") or 0) > 0
    except ValueError:
        return True


# The body of the request this thread serves, exactly as the client sent (and signed) it.
_raw = threading.local()


def keep_raw_bodies(app):
    """WSGI middleware: keeps each request's body as sent, before werkzeug parses a form out of
    it (moto then re-encodes the form to check the signature, and a client that encodes a
    character otherwise than botocore, as the AWS SDK for Rust does in IAM's CreateRole, fails
    with SignatureDoesNotMatch)."""

    def wrapped(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        if environ.get("PATH_INFO") == "/_tokendeploy/lambda-state":
            try:
                set_function_state(json.loads(body))
                start_response("200 OK", [("Content-Type", "application/json")])
                return [b"{}"]
            except Exception as error:  # a test's mistake: say what
                start_response("400 Bad Request", [("Content-Type", "text/plain")])
                return [f"{type(error).__name__}: {error}".encode()]
        environ["wsgi.input"] = io.BytesIO(body)
        served = next(filter(None, (plane.serve(environ) for plane in data_plane(environ))), None)
        if served is not None:
            status, headers, data = served
            start_response(f"{status} {HTTPStatus(status).phrase}", headers)
            return [data]
        environ["wsgi.input"] = io.BytesIO(body)
        _raw.body = body
        return app(environ, start_response)

    return wrapped


_planes = None
_functions = None
_planes_lock = threading.Lock()


def data_plane(environ):
    """The invoke-URL side of the emulator: REST APIs' stages (emulator/gateway.py), HTTP
    APIs (emulator/http_apis.py) and function URLs (emulator/function_urls.py), running the functions (emulator/functions.py)
    with this server as their AWS endpoint."""
    global _planes, _functions
    with _planes_lock:
        if _planes is None:
            from emulator.function_urls import FunctionUrls
            from emulator.http_apis import HttpApis
            from emulator.functions import Functions
            from emulator.gateway import Gateway

            _functions = Functions(f"http://127.0.0.1:{environ['SERVER_PORT']}")
            atexit.register(_functions.stop_all)
            _planes = (Gateway(_functions), FunctionUrls(_functions), HttpApis(_functions))
        return _planes


def patch() -> None:
    from botocore.awsrequest import AWSRequest

    from moto.iam import access_control

    base = access_control.IAMRequestBase
    original = getattr(base, "_create_aws_request", None)
    if original is None or "self._body or self._data" not in inspect.getsource(original):
        sys.exit(
            "moto_server.py: moto's IAMRequestBase._create_aws_request is not the one this "
            "patch was written for (moto 5.2.5); check whether body-less requests still fail "
            "with SignatureDoesNotMatch before patching it again"
        )

    def _create_aws_request(self) -> AWSRequest:
        signed_headers = self._get_string_between(
            "SignedHeaders=", ",", self._headers["Authorization"]
        ).split(";")
        headers = self._create_headers_for_aws_request(signed_headers, self._headers)
        raw = getattr(_raw, "body", None)
        if raw is not None:
            data = raw  # the fix: the bytes the client signed (none for a GET or DELETE)
        elif self._body:
            data = self._body
        elif _request_has_body(self._headers):
            data = self._data  # moto's own fallback: a form body werkzeug consumed
        else:
            data = b""
        request = AWSRequest(method=self._method, url=self._path, data=data, headers=headers)
        request.context["timestamp"] = headers["X-Amz-Date"]
        return request

    base._create_aws_request = _create_aws_request

    log_path = os.environ.get("MOTO_ENFORCING_LOG")
    lock = threading.Lock()
    check = base.check_action_permitted

    def check_logged(self, resource: str) -> None:
        entry = {
            "action": self._action,
            "resource": resource,
            "principal": getattr(self._access_key, "arn", None),
        }
        try:
            check(self, resource)
            entry.update(allowed=True, error=None)
        except Exception as error:  # moto's AccessDenied, re-raised unchanged
            entry.update(allowed=False, error=type(error).__name__)
            raise
        finally:
            if log_path:
                with lock, open(log_path, "a", encoding="utf-8") as log:
                    log.write(json.dumps(entry) + "\n")

    def check_action_permitted(self, resource: str) -> None:
        check_logged(self, resource_of(self._action, resource))
        action = self._action
        try:
            for implied in implied_actions(action, getattr(_raw, "body", None) or b""):
                self._action = implied
                check_logged(self, "*")
        finally:
            self._action = action

    base.check_action_permitted = check_action_permitted

    # moto checks most calls on the resource "*", which a statement naming an ARN never
    # matches: such a statement then allows nothing. Where moto knows no resource, the action
    # alone decides; where the resource is known (resource_of), its ARN is matched.
    statement = access_control.IAMPolicyStatement
    matches = statement._check_element_matches

    def check_element_matches(self, element, value):
        if element == "Resource" and value == "*":
            return True
        return matches(self, element, value)

    statement._check_element_matches = check_element_matches


def resource_of(action: str, resource: str) -> str:
    """The ARN a call acts on, where it matters to what the tests prove: GetSecretValue on the
    stack's secret, which the function's role may read by one inline policy naming that ARN
    alone (secret_access.rs). Elsewhere what moto passes (``"*"`` for most calls)."""
    if action != "secretsmanager:GetSecretValue":
        return resource
    try:
        secret_id = json.loads(getattr(_raw, "body", None) or b"{}").get("SecretId", "")
    except ValueError:
        return resource
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.secretsmanager.models import secretsmanager_backends

    for backend in secretsmanager_backends[DEFAULT_ACCOUNT_ID].values():
        if secret_id in backend.secrets:
            return backend.secrets[secret_id].arn
    return secret_id or resource


def implied_actions(action: str, body: bytes) -> list[str]:
    """The permissions AWS checks beside a call's own action, which moto does not:

    - iam:PassRole to give a function its execution role (Lambda developer guide,
      "Identity-based IAM policies for Lambda": "PassRole is used when you assign an execution
      role to a function"), on CreateFunction and on UpdateFunctionConfiguration with a Role;
    - tagging on create: CreateFunction with Tags needs lambda:TagResource (Lambda developer
      guide, "Using tags on Lambda functions"); CreateSecret with Tags needs
      secretsmanager:TagResource (API reference, CreateSecret); CreateLogGroup with tags needs
      logs:TagResource (API reference, CreateLogGroup, which also takes logs:TagLogGroup: the
      deployer's policy grants the newer one); CreateRole with Tags needs iam:TagRole (not in
      the IAM reference's words, but AWS's answer when it is missing: "... is not authorized to
      perform: iam:TagRole").
    """
    if action.startswith(("iam:", "sts:")):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        tagged = any(key.startswith("Tags.member.") for key in form)
        return ["iam:TagRole"] if action == "iam:CreateRole" and tagged else []
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return []
    if not isinstance(request, dict):
        return []
    implied = {
        "lambda:CreateFunction": ["iam:PassRole"] + (["lambda:TagResource"] if request.get("Tags") else []),
        "lambda:UpdateFunctionConfiguration": ["iam:PassRole"] if request.get("Role") else [],
        "logs:CreateLogGroup": ["logs:TagResource"] if request.get("tags") else [],
        "secretsmanager:CreateSecret": ["secretsmanager:TagResource"] if request.get("Tags") else [],
    }
    return implied.get(action, [])


def denied(response, action: str) -> str | None:
    """Under enforcement, the caller's ARN when its policies do not allow ``action`` (checked and
    logged as moto checks a call's own action); ``None`` when allowed or not enforcing."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMRequest

    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        return None
    request = IAMRequest(
        account_id=response.current_account,
        method=response.method,
        path=response.raw_path,
        data=response.data,
        body=response.raw_body,
        headers=response.headers,
        action=action,
    )
    try:
        request.check_action_permitted("*")
        return None
    except Exception:
        return getattr(request._access_key, "arn", "the caller")


def withhold_tags_without_list_tags() -> None:
    """AWS's GetFunction returns ``Tags`` "only if you have explicit allow permissions for
    lambda:ListTags", else a ``TagsError`` (API reference: GetFunction, TagsError); moto always
    returns them."""
    from moto.awslambda.responses import LambdaResponse

    get_function = LambdaResponse.get_function

    def get_function_withholding(self):
        body = get_function(self)
        caller = denied(self, "ListTags")
        if caller is None:
            return body
        answer = json.loads(body)
        answer.pop("Tags", None)
        arn = answer.get("Configuration", {}).get("FunctionArn", "")
        answer["TagsError"] = {
            "ErrorCode": "AccessDeniedException",
            "Message": f"User: {caller} is not authorized to perform: lambda:ListTags on resource: {arn} "
            "because no identity-based policy allows the lambda:ListTags action",
        }
        return json.dumps(answer)

    LambdaResponse.get_function = get_function_withholding


def honour_architectures_on_code_updates() -> None:
    """AWS's UpdateFunctionCode takes ``Architectures`` and switches the function to it with
    the new code (API reference: UpdateFunctionCode, request parameter Architectures); moto
    5.2.5 keeps the old one. Set it before moto's own update."""
    from moto.awslambda.models import LambdaFunction

    update = LambdaFunction.update_function_code

    def update_function_code(self, updated_spec):
        if updated_spec.get("Architectures"):
            self.architectures = updated_spec["Architectures"]
        return update(self, updated_spec)

    LambdaFunction.update_function_code = update_function_code


def play_function_states() -> None:
    """Lambda's function states (developer guide, "Lambda function states"): a function idle long
    enough becomes Inactive; an update brings it back through Pending (StateReasonCode
    Restoring); while Pending, "any invocations or other API actions that operate on the
    function will fail" (ResourceConflictException); a failed update leaves LastUpdateStatus
    Failed, and a new update is taken. moto's functions are always Active and Successful. The
    hook ``POST /_tokendeploy/lambda-state`` makes one idle or its last update failed."""
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda.models import LambdaFunction

    class Conflict(LambdaClientError):
        code = 409

        def __init__(self, message: str):
            super().__init__("ResourceConflictException", message)

    def pending(function) -> bool:
        until = getattr(function, "_td_pending_until", None)
        if until is not None and time.monotonic() >= until:
            function._td_pending_until = None
            function.state = "Active"
            return False
        return until is not None

    configuration = LambdaFunction.get_configuration

    def get_configuration(self, *args, **kwargs):
        config = configuration(self, *args, **kwargs)
        if pending(self):
            config.update(State="Pending", StateReasonCode="Restoring",
                          StateReason="The function is being restored.")
        elif self.state == "Inactive":
            config.update(StateReasonCode="Idle", StateReason="The function is inactive (idle).")
        last_update = getattr(self, "_td_last_update", None)
        if last_update and "LastUpdateStatus" in config:
            config["LastUpdateStatus"] = last_update[0]
            config["LastUpdateStatusReason"] = last_update[1]
        return config

    def refusing_while_pending(update):
        def updated(self, *args, **kwargs):
            if pending(self):
                raise Conflict(
                    "The operation cannot be performed at this time. "
                    "The function is currently in the following state: Pending"
                )
            idle = self.state == "Inactive"
            answer = update(self, *args, **kwargs)
            self._td_last_update = None
            if idle:
                self._td_pending_until = time.monotonic() + 1.0
            return answer

        return updated

    LambdaFunction.get_configuration = get_configuration
    LambdaFunction.update_function_code = refusing_while_pending(LambdaFunction.update_function_code)
    LambdaFunction.update_configuration = refusing_while_pending(LambdaFunction.update_configuration)


def set_function_state(request: dict) -> None:
    """The ``/_tokendeploy/lambda-state`` hook."""
    from moto.awslambda.models import lambda_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = lambda_backends[request.get("Account", DEFAULT_ACCOUNT_ID)][request["Region"]]
    function = backend.get_function(request["FunctionName"])
    if "State" in request:
        function.state = request["State"]
    if "LastUpdateStatus" in request:
        function._td_last_update = (request["LastUpdateStatus"], request.get("LastUpdateStatusReason", ""))


def free_secret_names_after_a_moment() -> None:
    """DeleteSecret with ForceDeleteWithoutRecovery: "Secrets Manager performs the actual deletion
    with an asynchronous background process, so there might be a short delay ... If you delete
    a secret and then immediately create a secret with the same name, use appropriate back off
    and retry logic" (API reference, DeleteSecret). Meanwhile CreateSecret of the name answers
    InvalidRequestException (its documented cause: "The secret is scheduled for deletion"), and
    the secret is gone from DescribeSecret. moto frees the name at once."""
    from moto.secretsmanager.exceptions import InvalidRequestException
    from moto.secretsmanager.models import SecretsManagerBackend

    hold = float(os.environ.get("MOTO_SECRET_NAME_FREED_AFTER", "2"))
    delete, create = SecretsManagerBackend.delete_secret, SecretsManagerBackend.create_secret

    def held(backend) -> dict:
        if not hasattr(backend, "_td_names_held"):
            backend._td_names_held = {}
        return backend._td_names_held

    def delete_secret(self, secret_id, recovery_window_in_days, force_delete_without_recovery):
        existing = self.secrets[secret_id] if self._is_valid_identifier(secret_id) else None
        answer = delete(self, secret_id, recovery_window_in_days, force_delete_without_recovery)
        if force_delete_without_recovery and existing is not None:
            held(self)[existing.name] = time.monotonic() + hold
        return answer

    def create_secret(self, name, *args, **kwargs):
        until = held(self).get(name)
        if until is not None and time.monotonic() < until:
            raise InvalidRequestException(
                "You can't create this secret because a secret with this name is already scheduled for deletion."
            )
        held(self).pop(name, None)
        return create(self, name, *args, **kwargs)

    SecretsManagerBackend.delete_secret = delete_secret
    SecretsManagerBackend.create_secret = create_secret


def stop_deleted_functions() -> None:
    """A deleted function's warm instances stop, as Lambda's do (emulator/functions.py)."""
    from moto.awslambda.models import LambdaBackend

    delete = LambdaBackend.delete_function

    def delete_function(self, function_name, qualifier=None):
        function = self.get_function(function_name, qualifier)
        deleted = delete(self, function_name, qualifier)
        if _functions is not None:
            _functions.forget(function.function_arn)
        return deleted

    LambdaBackend.delete_function = delete_function


def keep_stages_across_deployments() -> None:
    """AWS's CreateDeployment with the name of an existing stage points that stage at the new
    deployment and keeps everything else it has, its method settings (throttling) included
    (API reference: CreateDeployment, stageName); moto 5.2.5 makes the stage anew, empty."""
    from moto.apigateway.models import RestAPI

    from emulator.gateway import snapshot as gateway_snapshot

    create = RestAPI.create_deployment

    def create_deployment(self, name, description, stage_variables=None):
        existing = self.stages.get(name) if name else None
        deployment = create(self, name, description, stage_variables)
        # What the deployment serves, as API Gateway keeps it: later changes to the API wait
        # for the next deployment (emulator/gateway.py routes by it).
        deployment._td_snapshot = gateway_snapshot(self)
        if existing is not None:
            existing.deployment_id = deployment.id
            existing.variables.update(stage_variables or {})
            self.stages[name] = existing
        return deployment

    RestAPI.create_deployment = create_deployment


def remove_method_settings() -> None:
    """AWS's UpdateStage removes a stage's method settings for one resource and method with
    `op: remove, path: /{resourcePath}/{httpMethod}` (path `~1`-escaped, as the keys of
    methodSettings are), answering BadRequestException "Cannot remove method setting ...
    because there is no method setting for this method" when there is none (API reference:
    UpdateStage, "Patch Operations"; the message as Terraform's AWS provider handles it in
    aws_api_gateway_method_settings); moto 5.2.6 ignores the removal."""
    from moto.apigateway.exceptions import BadRequestException
    from moto.apigateway.models import Stage

    apply = Stage.apply_operations

    def apply_operations(self, patch_operations):
        rest = []
        for op in patch_operations:
            parts = op["path"].split("/")
            if op["op"] == "remove" and len(parts) == 3 and parts[0] == "":
                key = f"{parts[1]}/{parts[2]}"
                if self.method_settings.pop(key, None) is None:
                    raise BadRequestException(
                        f"Cannot remove method setting {key} because there is no method setting for this method"
                    )
            else:
                rest.append(op)
        return apply(self, rest)

    Stage.apply_operations = apply_operations


def deleting_what_is_gone_is_not_found() -> None:
    """DeleteRestApi, DeleteResource, DeleteUsagePlan and DeleteUsagePlanKey of what is not
    there are NotFoundException (404) (API Gateway API reference: each call's Errors); moto 5.2.6
    fails on a missing dictionary key and answers 500. Twins meet it: each takes the other's copy
    for a duplicate and both delete it, or a run retires a REST API a twin just removed."""
    from moto.apigateway.models import APIGatewayBackend

    def checked_first(delete, check):
        def delete_there(self, *ids):
            check(self, *ids)
            return delete(self, *ids)

        return delete_there

    backend = APIGatewayBackend
    backend.delete_rest_api = checked_first(backend.delete_rest_api, backend.get_rest_api)
    backend.delete_resource = checked_first(backend.delete_resource, backend.get_resource)
    backend.delete_usage_plan = checked_first(backend.delete_usage_plan, backend.get_usage_plan)
    backend.delete_usage_plan_key = checked_first(backend.delete_usage_plan_key, backend.get_usage_plan_key)


def play_function_urls() -> None:
    """What Lambda does with function URLs and moto 5.2.6 does not:

    - AddPermission's ``FunctionUrlAuthType`` and ``InvokedViaFunctionUrl`` are conditions of
      the statement, ``StringEquals lambda:FunctionUrlAuthType`` and ``Bool
      lambda:InvokedViaFunctionUrl`` (developer guide, "Control access to Lambda function
      URLs"); moto keeps them as keys of their own.
    - CreateFunctionUrlConfig on a function that has a URL is ResourceConflictException
      ("FunctionUrlConfig exists for this Lambda function"; API reference:
      CreateFunctionUrlConfig, Errors); moto makes a second URL in its place.
    - The account's concurrency is 1,000 a region, of which 100 stay unreserved (developer
      guide, "Lambda quotas", "Configuring reserved concurrency"): moto enforces it only with
      MOTO_LAMBDA_CONCURRENCY_QUOTA set, which this sets unless a test chose another."""
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda.policy import Policy

    os.environ.setdefault("MOTO_LAMBDA_CONCURRENCY_QUOTA", "1000")
    decode = Policy.decode_policy

    def decode_policy(self, obj):
        auth_type = obj.pop("FunctionUrlAuthType", None)
        via_url = obj.pop("InvokedViaFunctionUrl", None)
        policy = decode(self, obj)
        condition = obj.setdefault("Condition", {}) if auth_type or via_url is not None else None
        if auth_type:
            condition.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = auth_type
        if via_url is not None:
            condition.setdefault("Bool", {})["lambda:InvokedViaFunctionUrl"] = str(bool(via_url)).lower()
        return policy

    Policy.decode_policy = decode_policy
    create = LambdaFunction.create_url_config

    class ResourceConflict(LambdaClientError):
        code = 409

    def create_url_config(self, config):
        if getattr(self, "url_config", None):
            raise ResourceConflict(
                "ResourceConflictException",
                f"Failed to create function url config for [functionArn = {self.function_arn}]. "
                "Error message:  FunctionUrlConfig exists for this Lambda function",
            )
        return create(self, config)

    LambdaFunction.create_url_config = create_url_config


def play_http_apis() -> None:
    """What API Gateway does with HTTP APIs and moto 5.2.6 does not (API Gateway v2 API
    reference: UpdateStage, CreateRoute, CreateStage, DeleteApi, each with its Errors):

    - UpdateStage (``PATCH /v2/apis/{id}/stages/{name}``) sets automatic deployment and the
      default route settings; moto has no UpdateStage (it answers 500).
    - CreateRoute with a route key the API has, and CreateStage with a name it has, are
      ConflictException; moto adds a second route, and replaces the stage.
    - DeleteApi of an API that is not there is NotFoundException; moto answers 200.
    - GetAuthorizers lists an API's authorizers; moto has none (it answers 500)."""
    from moto.apigatewayv2.exceptions import APIGatewayV2Error
    from moto.apigatewayv2.models import Api, ApiGatewayV2Backend
    from moto.apigatewayv2.responses import ApiGatewayV2Response

    class Conflict(APIGatewayV2Error):
        code = 409

        def __init__(self, message: str):
            super().__init__("ConflictException", message)

    create_route = Api.create_route

    def create_route_once(self, *args, **kwargs):
        key = kwargs.get("route_key")
        if any(route.route_key == key for route in self.routes.values()):
            raise Conflict(f"Unable to create route {key}. A route with that key already exists.")
        return create_route(self, *args, **kwargs)

    Api.create_route = create_route_once
    create_stage = Api.create_stage

    def create_stage_once(self, config):
        if config.get("stageName") in self.stages:
            raise Conflict(f"Stage already exists: {config.get('stageName')}")
        return create_stage(self, config)

    Api.create_stage = create_stage_once
    delete_api = ApiGatewayV2Backend.delete_api

    def delete_api_there(self, api_id):
        self.get_api(api_id)
        return delete_api(self, api_id)

    ApiGatewayV2Backend.delete_api = delete_api_there

    def update_stage(self):
        parts = self.path.split("/")
        api_id, stage_name = parts[-3], urllib.parse.unquote(parts[-1])
        stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)
        body = json.loads(self.body or "{}")
        if "autoDeploy" in body:
            stage.auto_deploy = body["autoDeploy"]
        if "defaultRouteSettings" in body:
            stage.default_route_settings = {**(stage.default_route_settings or {}), **body["defaultRouteSettings"]}
        if "routeSettings" in body:
            stage.route_settings = body["routeSettings"]
        return 200, {}, json.dumps(stage.to_json())

    ApiGatewayV2Response.update_stage = update_stage

    def get_authorizers(self):
        api = self.apigatewayv2_backend.get_api(self.path.split("/")[-2])
        return 200, {}, json.dumps({"items": [authorizer.to_json() for authorizer in api.authorizers.values()]})

    ApiGatewayV2Response.get_authorizers = get_authorizers


# Account API reference, ListRegions ("Lists all the Regions for a given account and their
# respective opt-in statuses"); AWS General Reference, "AWS Regions": the regions enabled by
# default and those an account opts in to.
ENABLED_BY_DEFAULT = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ap-south-1", "ap-northeast-1",
    "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ca-central-1",
    "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1", "sa-east-1",
]
OPT_IN = ["af-south-1", "ap-east-1", "ap-south-2", "eu-south-1", "me-south-1", "il-central-1"]


def play_account_regions() -> None:
    """The Account API's ListRegions, which moto 5.2.6 does not have: every region of the
    partition with its opt-in status (the default ones ENABLED_BY_DEFAULT, the opt-in ones
    DISABLED until an account opts in with EnableRegion, ENABLED after), filtered by
    ``RegionOptStatusContains``, a page of ``MaxResults`` (at most 50) at a time. Enabling is
    immediate here; on AWS it takes minutes to hours (ENABLING first), which tokendeploy never
    waits on: it lists only what is ENABLED already."""
    from moto.account import urls
    from moto.account.responses import AccountResponse

    def list_regions(self):
        body = json.loads(self.body or "{}")
        wanted = body.get("RegionOptStatusContains")
        regions = [{"RegionName": name, "RegionOptStatus": "ENABLED_BY_DEFAULT"} for name in ENABLED_BY_DEFAULT]
        regions += [
            {"RegionName": name, "RegionOptStatus": "ENABLED" if name in opted_in else "DISABLED"}
            for name in OPT_IN
        ]
        if wanted:
            regions = [region for region in regions if region["RegionOptStatus"] in wanted]
        start = int(body.get("NextToken") or 0)
        size = min(int(body.get("MaxResults") or 20), 50)
        page = {"Regions": regions[start : start + size]}
        if start + size < len(regions):
            page["NextToken"] = str(start + size)
        return 200, {}, json.dumps(page)

    def enable_region(self):
        name = json.loads(self.body or "{}").get("RegionName")
        if name not in OPT_IN:
            error = {"__type": "ValidationException", "message": f"{name} is not an opt-in region"}
            return 400, {}, json.dumps(error)
        opted_in.add(name)
        return 200, {}, ""

    opted_in = set()
    AccountResponse.list_regions = list_regions
    AccountResponse.enable_region = enable_region
    urls.url_paths["{0}/listRegions$"] = AccountResponse.dispatch
    urls.url_paths["{0}/enableRegion$"] = AccountResponse.dispatch


def play_tagged_api_gateway() -> None:
    """Resource Groups Tagging API GetResources lists API Gateway's tagged resources too (its
    reference's supported services: REST APIs, API keys, usage plans, HTTP APIs); moto 5.2.6
    lists those of Lambda, CloudWatch Logs and Secrets Manager, and no API Gateway's."""
    from moto.apigateway.models import apigateway_backends
    from moto.apigatewayv2.models import apigatewayv2_backends
    from moto.core.resource_tagging import TaggedResource, make_tag_matcher
    from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend

    generate = ResourceGroupsTaggingAPIBackend._get_resources_generator

    def with_api_gateway(self, tag_filters=None, resource_type_filters=None, resource_arn_list=None):
        yield from generate(self, tag_filters, resource_type_filters, resource_arn_list)
        if resource_type_filters or resource_arn_list:
            return
        matches = make_tag_matcher(tag_filters)
        region, account = self.region_name, self.account_id
        partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
        arn = lambda path: f"arn:{partition}:apigateway:{region}::/{path}"  # noqa: E731
        found = []
        if account in apigateway_backends and region in apigateway_backends[account]:
            v1 = apigateway_backends[account][region]
            found += [(arn(f"restapis/{api.id}"), api.tags, "apigateway:restapis") for api in v1.apis.values()]
            found += [(arn(f"apikeys/{key.id}"), key.tags, "apigateway:apikeys") for key in v1.keys.values()]
            found += [(arn(f"usageplans/{plan.id}"), plan.tags, "apigateway:usageplans") for plan in v1.usage_plans.values()]
        if account in apigatewayv2_backends and region in apigatewayv2_backends[account]:
            v2 = apigatewayv2_backends[account][region]
            found += [(api.arn, v2.get_tags(api.arn), "apigateway:apis") for api in v2.apis.values()]
        for resource_arn, tags, kind in found:
            if tags and matches(tags or {}):
                yield TaggedResource(arn=resource_arn, tags=dict(tags), resource_type=kind)

    ResourceGroupsTaggingAPIBackend._get_resources_generator = with_api_gateway


if __name__ == "__main__":
    patch()
    play_account_regions()
    play_tagged_api_gateway()
    play_function_urls()
    play_http_apis()
    withhold_tags_without_list_tags()
    honour_architectures_on_code_updates()
    play_function_states()
    free_secret_names_after_a_moment()
    keep_stages_across_deployments()
    remove_method_settings()
    deleting_what_is_gone_is_not_found()
    stop_deleted_functions()
    import moto.server

    run_simple = moto.server.run_simple
    moto.server.run_simple = lambda host, port, app, *args, **kwargs: run_simple(
        host, port, keep_raw_bodies(app), *args, **kwargs
    )
    moto.server.main(sys.argv[1:])
