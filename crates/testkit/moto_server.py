"""Run moto's server with three fixes that make it answer as AWS does: IAM enforcement checks the
signature over the bytes a client sent, Lambda's UpdateFunctionCode honours Architectures, and
API Gateway's CreateDeployment to an existing stage keeps that stage's settings.

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
"""

from __future__ import annotations

import inspect
import io
import json
import os
import sys
import threading


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
        environ["wsgi.input"] = io.BytesIO(body)
        _raw.body = body
        return app(environ, start_response)

    return wrapped


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
    if log_path:
        lock = threading.Lock()
        check = base.check_action_permitted

        def check_action_permitted(self, resource: str) -> None:
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
                with lock, open(log_path, "a", encoding="utf-8") as log:
                    log.write(json.dumps(entry) + "\n")

        base.check_action_permitted = check_action_permitted


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


def keep_stages_across_deployments() -> None:
    """AWS's CreateDeployment with the name of an existing stage points that stage at the new
    deployment and keeps everything else it has, its method settings (throttling) included
    (API reference: CreateDeployment, stageName); moto 5.2.5 makes the stage anew, empty."""
    from moto.apigateway.models import RestAPI

    create = RestAPI.create_deployment

    def create_deployment(self, name, description, stage_variables=None):
        existing = self.stages.get(name) if name else None
        deployment = create(self, name, description, stage_variables)
        if existing is not None:
            existing.deployment_id = deployment.id
            existing.variables.update(stage_variables or {})
            self.stages[name] = existing
        return deployment

    RestAPI.create_deployment = create_deployment


if __name__ == "__main__":
    patch()
    honour_architectures_on_code_updates()
    keep_stages_across_deployments()
    import moto.server

    run_simple = moto.server.run_simple
    moto.server.run_simple = lambda host, port, app, *args, **kwargs: run_simple(
        host, port, keep_raw_bodies(app), *args, **kwargs
    )
    moto.server.main(sys.argv[1:])
