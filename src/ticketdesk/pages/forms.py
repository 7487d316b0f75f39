"""Form fields checked by the API's own request models, with errors by field for the page.

Every form page answers the same way: what the form does, or, when the form or the service
refuses it, the same page again with what was typed and each error beside its field
(`submit`, `same_page`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel, ValidationError

from ticketdesk.pages.rendering import render

Model = TypeVar("Model", bound=BaseModel)


class FormErrors(Exception):
    """Why a form was refused: a sentence per field ("form": the whole form), and the status
    of the page that shows the form again."""

    def __init__(self, errors: dict[str, str], status_code: int = 400) -> None:
        super().__init__("the form has errors")
        self.errors = errors
        self.status_code = status_code


ShowAgain = Callable[[FormErrors], Awaitable[Response]]
"""The form's page again, with the errors beside their fields."""


async def submit(attempt: Awaitable[Response], again: ShowAgain) -> Response:
    """What a posted form answers: the attempt's own answer (mostly a redirect), or, when it
    raises FormErrors, its page again. The attempt turns the service's refusals it can put in
    words into FormErrors; any other error is the error page, as on every page."""
    try:
        return await attempt
    except FormErrors as exc:
        return await again(exc)


def same_page(request: Request, template: str, context: dict[str, Any]) -> ShowAgain:
    """Show `template` again with `context` (what was typed, kept) and the errors."""

    async def again(exc: FormErrors) -> Response:
        return render(request, template, {**context, "errors": exc.errors}, exc.status_code)

    return again


FIELDS = {
    "topic": "The topic",
    "text": "The message",
    "message": "The message",
    "email": "The email address",
    "password": "The password",
    "new_password": "The new password",
    "current_password": "The current password",
    "username": "The name",
    "score": "The score",
    "comment": "The comment",
    "token": "The link",
}
"""What a form calls each field, in the messages below."""
MESSAGES = {
    "missing": "{field} is needed.",
    "string_too_short": "{field} cannot be empty.",
    "string_too_long": "{field} may have at most {max_length} characters; it has {length}.",
    "too_short": "{field} cannot be empty.",
    "int_parsing": "{field} must be a whole number.",
    "int_type": "{field} must be a whole number.",
    "greater_than_equal": "{field} must be at least {ge}.",
    "less_than_equal": "{field} must be at most {le}.",
    "string_type": "{field} must be text.",
}
"""The words a person reads for each kind of mistake (the validator's own are for the API).
A check of our own (a value error) says its own sentence, already written for people."""


def parse(
    model: type[Model], values: dict[str, Any], *, names: dict[str, str] | None = None
) -> Model:
    """The model from the form's values, or FormErrors naming each wrong field; `names` maps
    a model's field to the form's own name for it (the API's `text` is a form's `message`)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "form"
            shown = (names or {}).get(field, field)
            errors.setdefault(shown, plain_words(field, error, values.get(field)))
        raise FormErrors(errors) from None


def plain_words(field: str, error: Any, value: Any) -> str:
    """The error in words for the person who filled in the form."""
    name = FIELDS.get(field, field.replace("_", " ").capitalize())
    template = MESSAGES.get(error["type"])
    if template is None:
        said = str(error["msg"]).removeprefix("Value error, ")
        said = said.replace("value is not a valid email address: ", "this is not an address: ")
        # "must not be blank": the field's name makes it a sentence.
        return _sentence(f"{name} {said}" if said[:5] in {"must ", "may n"} else said)
    length = len(value) if isinstance(value, str) else 0
    if error["type"] == "string_too_short" and length:
        template = "{field} needs at least {min_length} characters; it has {length}."
    return template.format(field=name, length=length, **error.get("ctx", {}))


def _sentence(message: str) -> str:
    message = message.removeprefix("Value error, ")
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
