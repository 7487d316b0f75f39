"""The request's database handle for endpoints, and the route class that runs them.

Each route's parameters are worked out once, when the app is built, not on every request.
FastAPI answers a request by walking the endpoint's tree of dependencies and asking of each
node, every time, what kind of thing it is. `compiled_handler` asks those questions once, at
start-up, and keeps for each endpoint a plain sequence of steps: call this dependency with
these, read these parameters with FastAPI's own readers, call the endpoint, serialize its
answer with FastAPI's own serializer. Errors are FastAPI's: the same validation errors, in
the same order, raised as the same exception. An endpoint with anything the sequence does
not cover (a form or a file, a dependency with `yield`, a sync function, a stream, background
tasks, security scopes, overridden dependencies) keeps FastAPI's own handler.
"""

from __future__ import annotations

import email.message
import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine
from copy import deepcopy
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi._body_limit import get_body_limit_error, wrap_app_with_body_limit
from fastapi._compat import (
    ModelField,
    Undefined,
    field_annotation_is_sequence,
    get_cached_model_fields,
)
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import (
    _get_multidict_extras,
    _get_param_aliases,
    _get_param_model,
    _is_json_field,
    request_body_to_args,
    request_params_to_args,
)
from fastapi.exceptions import RequestValidationError
from fastapi.params import Form
from fastapi.routing import APIRoute, _extract_endpoint_context, serialize_response
from fastapi.sse import EventSourceResponse
from fastapi.utils import is_body_allowed_for_status_code
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from ticketdesk.db import Db
from ticketdesk.db.request import REQUEST_DB, request_db

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class Route(APIRoute):
    """Runs its endpoint by `compiled_handler` where it can, and commits the request's
    transaction once the response is made, before it is sent.

    An error answer (status 400 and above) rolls back instead, as does an exception; a
    failing commit raises, and the error handlers answer it (503 for an outage).
    """

    compiled: Handler | None
    """The endpoint's compiled handler, worked out once; None: FastAPI's runs it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.compiled is not None:
            # FastAPI's own wrapper sets up per-request exit stacks that only its handler
            # uses; exceptions go on to the app's exception middleware, which answers them
            # with the same handlers.
            self.app = _asgi(self.get_route_handler(), getattr(self, "max_body_size", None))

    def get_route_handler(self) -> Handler:
        if not hasattr(self, "compiled"):  # asked again for a subclass's wrapped handler
            self.compiled = compiled_handler(self)
        handle = self.compiled or super().get_route_handler()

        async def handle_then_finish(request: Request) -> Response:
            try:
                response = await handle(request)
            except BaseException:
                db = request.scope.pop(REQUEST_DB, None)
                if db is not None:
                    await db.finish(commit=False)
                raise
            db = request.scope.pop(REQUEST_DB, None)
            if db is not None:
                await db.finish(commit=response.status_code < 400)
            return response

        return handle_then_finish


def _asgi(handle: Handler, max_body_size: int | None) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await handle(Request(scope, receive, send))
        await response(scope, receive, send)

    return wrap_app_with_body_limit(app, max_body_size)


Values = dict[str, Any]
Solver = Callable[[Request, Response | None, dict[Any, Any], list[Any], Any], Awaitable[Values]]


def _is_plain_async(call: Any) -> bool:
    function = call if inspect.isroutine(call) else getattr(call, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(function)


def _is_plain_sync(call: Any) -> bool:
    return inspect.isfunction(call) and not (
        inspect.isgeneratorfunction(call)
        or inspect.iscoroutinefunction(call)
        or inspect.isasyncgenfunction(call)
    )


def _solver(dependant: Dependant, embed_body_fields: bool) -> Solver | None:
    """The steps that give `dependant`'s arguments, in FastAPI's order (its dependencies
    first, then its own parameters); None when it needs anything they do not cover."""
    if (
        dependant.security_scopes_param_name
        or dependant.background_tasks_param_name
        or dependant.websocket_param_name
    ):
        return None
    steps: list[tuple[str | None, Any, Solver, bool, bool]] = []
    for sub in dependant.dependencies:
        call = sub.call
        if getattr(sub, "concurrency", None) is not None or sub.own_oauth_scopes:
            return None
        is_async = _is_plain_async(call)
        if not is_async and not _is_plain_sync(call):
            return None
        inner = _solver(sub, embed_body_fields)
        if inner is None:
            return None
        steps.append((sub.name, call, inner, sub.use_cache, is_async))
    sources = [
        (fields, read, _scalar_reader(fields) or (_model_reader(fields) if multi else None))
        for fields, read, multi in (
            (dependant.path_params, _path_params, False),
            (dependant.query_params, _query_params, True),
            (dependant.header_params, _headers, False),
            (dependant.cookie_params, _cookies, False),
        )
        if fields
    ]
    body_params = dependant.body_params
    connection_name = dependant.http_connection_param_name
    request_name = dependant.request_param_name
    response_name = dependant.response_param_name

    async def solve(
        request: Request,
        response: Response | None,
        cache: dict[Any, Any],
        errors: list[Any],
        body: Any,
    ) -> Values:
        values: Values = {}
        for name, call, inner, use_cache, is_async in steps:
            before = len(errors)
            arguments = await inner(request, response, cache, errors, body)
            if len(errors) > before:
                continue
            if use_cache and call in cache:
                solved = cache[call]
            elif is_async:
                solved = await call(**arguments)
            else:
                solved = await run_in_threadpool(call, **arguments)
            if name is not None:
                values[name] = solved
            cache.setdefault(call, solved)
        for fields, read, scalars in sources:
            source = read(request)
            found = scalars(source) if scalars is not None else None
            if found is None:
                found, wrong = request_params_to_args(fields, source)
                errors += wrong
            values.update(found)
        if body_params:
            found, wrong = await request_body_to_args(
                body_fields=body_params, received_body=body, embed_body_fields=embed_body_fields
            )
            values.update(found)
            errors.extend(wrong)
        if connection_name:
            values[connection_name] = request
        if request_name:
            values[request_name] = request
        if response_name:
            values[response_name] = response
        return values

    return solve


ScalarReader = Callable[[Any], Values | None]


def _scalar_reader(fields: list[ModelField]) -> ScalarReader | None:
    """A shorter way to FastAPI's values for parameters that are each one plain value (a
    path id, a header): the same keys, defaults and validation, with the decisions made
    once. It gives up (None) on anything else, and on any error, so that FastAPI's own
    reading gives the error; reading has no side effects, so reading twice is harmless."""
    plan = []
    for field in fields:
        if (
            _get_param_model(field) is not None
            or _is_json_field(field)
            or field_annotation_is_sequence(field.field_info.annotation)
        ):
            return None
        keys = tuple(key for _, key in _get_param_aliases(field))
        info = field.field_info
        default = None if info.is_required() or info.validate_default else (field.default,)
        where = info.in_.value  # type: ignore[attr-defined]
        plan.append((field, field.name, keys, default, where))

    def read(source: Any) -> Values | None:
        values: Values = {}
        for field, name, keys, default, where in plan:
            for key in keys:
                value = source.get(key)
                if value is not None:
                    break
            else:
                if default is None:
                    return None
                values[name] = deepcopy(default[0])
                continue
            found, wrong = field.validate(value, values, loc=(where, key))
            if wrong:
                return None
            values[name] = found
        return values

    return read


def _model_reader(fields: list[ModelField]) -> ScalarReader | None:
    """FastAPI's reading of one model of query parameters (`Annotated[Model, Query()]`), with
    the questions it asks of each of the model's fields (its aliases, whether it repeats)
    answered once. It gives up (None) on anything else, and on any error, as above."""
    if len(fields) != 1:
        return None
    model_field = fields[0]
    model = _get_param_model(model_field)
    if model is None or model_field.field_info.annotation is not model:
        return None
    plan = []
    for field in get_cached_model_fields(model):  # type: ignore[arg-type]  # a model class
        if _is_json_field(field):
            return None
        aliases = tuple(_get_param_aliases(field, convert_underscores=False))
        plan.append((aliases, field_annotation_is_sequence(field.field_info.annotation)))
    name = model_field.name
    loc = (model_field.field_info.in_.value,)  # type: ignore[attr-defined]

    def read(source: Any) -> Values | None:
        received: dict[str, Any] = {}
        taken = set()
        for aliases, repeats in plan:
            alias, key = aliases[0]
            if len(aliases) > 1:
                alias, key = next((pair for pair in aliases if pair[1] in source), aliases[0])
            value = source.getlist(key) if repeats else source.get(key)
            if value:
                received[alias] = value
            elif value is not None and not repeats:
                received[alias] = value  # an empty string is a value
            taken.add(key)
        received.update(_get_multidict_extras(source, taken))
        found, wrong = model_field.validate(received, {}, loc=loc)
        if wrong:
            return None
        return {name: found}

    return read


def _path_params(request: Request) -> Any:
    return request.path_params


def _query_params(request: Request) -> Any:
    return request.query_params


def _headers(request: Request) -> Any:
    return request.headers


def _cookies(request: Request) -> Any:
    return request.cookies


def _needs_response(dependant: Dependant) -> bool:
    return bool(dependant.response_param_name) or any(
        _needs_response(sub) for sub in dependant.dependencies
    )


def compiled_handler(route: APIRoute) -> Handler | None:
    """`route`'s endpoint as a fixed sequence of steps, or None where FastAPI's own handler
    must run it (see the module's docstring)."""
    dependant = route.dependant
    endpoint = dependant.call
    body_field = route.body_field
    if (
        route.dependency_overrides_provider is not None
        or not _is_plain_async(endpoint)
        or getattr(route, "is_json_stream", False)
        or getattr(route, "stream_item_field", None) is not None
        or (body_field is not None and isinstance(body_field.field_info, Form))
    ):
        return None
    response_class = route.response_class
    if isinstance(response_class, DefaultPlaceholder):
        actual_class: type[Response] = response_class.value
        dump_json = route.response_field is not None
    else:
        actual_class, dump_json = response_class, False
    if issubclass(actual_class, EventSourceResponse):
        return None
    solve = _solver(dependant, route._embed_body_fields)
    if solve is None:
        return None
    assert endpoint is not None
    call: Callable[..., Awaitable[Any]] = endpoint
    strict = route.strict_content_type
    strict_content_type = strict.value if isinstance(strict, DefaultPlaceholder) else strict
    context = _extract_endpoint_context(endpoint)
    context["path"] = f"{','.join(sorted(route.methods or ()))} {route.path}"
    needs_response = _needs_response(dependant)
    status_code = route.status_code
    response_field = route.response_field

    async def handle(request: Request) -> Response:
        body: Any = Undefined
        if body_field is not None:
            body = await _json_body(request, strict_content_type, context)
        response: Response | None = None
        if needs_response:
            response = Response()
            del response.headers["content-length"]
            response.status_code = None  # type: ignore[assignment]
        errors: list[Any] = []
        values = await solve(request, response, {}, errors, body)
        if errors:
            raise RequestValidationError(
                errors, body=None if body is Undefined else body, endpoint_ctx=context
            )
        raw = await call(**values)
        if isinstance(raw, Response):
            return raw
        arguments: dict[str, Any] = {"background": None}
        current = status_code or (response.status_code if response is not None else None)
        if current is not None:
            arguments["status_code"] = current
        if response is not None and response.status_code:
            arguments["status_code"] = response.status_code
        content = await serialize_response(
            field=response_field,
            response_content=raw,
            is_coroutine=True,
            endpoint_ctx=context,
            dump_json=dump_json,
            include=route.response_model_include,
            exclude=route.response_model_exclude,
            by_alias=route.response_model_by_alias,
            exclude_unset=route.response_model_exclude_unset,
            exclude_defaults=route.response_model_exclude_defaults,
            exclude_none=route.response_model_exclude_none,
        )
        if dump_json:
            answer = Response(content=content, media_type="application/json", **arguments)
        else:
            answer = actual_class(content, **arguments)
        if not is_body_allowed_for_status_code(answer.status_code):
            answer.body = b""
        if response is not None:
            answer.headers.raw.extend(response.headers.raw)
        return answer

    return handle


async def _json_body(request: Request, strict_content_type: bool, context: Any) -> Any:
    """The request's body as FastAPI's handler reads it for a JSON body parameter."""
    try:
        body_bytes = await request.body()
        if not body_bytes:
            return Undefined
        content_type = request.headers.get("content-type")
        if content_type == "application/json":  # what the request edge makes of every body
            return await request.json()
        if not content_type:
            return body_bytes if strict_content_type else await request.json()
        message = email.message.Message()
        message["content-type"] = content_type
        if message.get_content_maintype() == "application":
            subtype = message.get_content_subtype()
            if subtype == "json" or subtype.endswith("+json"):
                return await request.json()
        return body_bytes
    except json.JSONDecodeError as e:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", e.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": e.msg},
                }
            ],
            body=e.doc,
            endpoint_ctx=context,
        ) from e
    except HTTPException:
        raise
    except Exception as e:
        if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (error := get_body_limit_error(e)):
            raise error from e
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from e


async def _db(request: Request) -> Db:
    return request_db(request)


DbHandle = Annotated[Db, Depends(_db)]
"""The request's database handle, for an endpoint's parameters."""

DATABASE_DEPENDENCY = _db
"""The dependency through which an operation reaches the database (for its OpenAPI 503)."""


class MultipartRoute(Route):
    """A route that takes only multipart/form-data bodies, beside a JSON route on the same
    path and method: requests of any other type pass on to that one.

    Its form is documented on the JSON route's operation (`openapi_extra`), as one
    operation with two kinds of body.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and not _is_multipart(scope):
            return Match.NONE, {}
        return match, child


def _is_multipart(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value.lower().startswith(b"multipart/form-data"))
    return False
