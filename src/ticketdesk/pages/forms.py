"""Form fields checked by the API's own request models, with errors by field for the page."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class FormErrors(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("the form has errors")
        self.errors = errors


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


def parse(model: type[Model], values: dict[str, Any]) -> Model:
    """The model from the form's values, or FormErrors naming each wrong field."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "form"
            errors.setdefault(field, plain_words(field, error, values.get(field)))
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
