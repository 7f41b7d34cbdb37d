"""Strict request bodies: ``"4"`` is not a number here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec
from litestar.dto import MsgspecDTO
from litestar.typing import FieldDefinition

from holdsvc.errors import ValidationFailed

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Reference, Schema

T = TypeVar("T", bound=msgspec.Struct)
TOO_DEEP = "The body is not valid JSON: it is nested too deeply"


def decode_strict(raw: bytes, model: type[T]) -> T:
    """Decode JSON into ``model`` with no type coercion; ValidationFailed on any mismatch."""
    try:
        return msgspec.json.decode(raw, type=model, strict=True)
    except msgspec.ValidationError as error:
        raise ValidationFailed(str(error)) from None
    except msgspec.DecodeError as error:
        raise ValidationFailed(f"The body is not valid JSON: {error}") from None
    except RecursionError:
        raise ValidationFailed(TOO_DEEP) from None


def decode_untyped(raw: bytes) -> object | None:
    """A body as plain JSON values, for a look before it is validated; None when it is not
    JSON, or nested too deeply to decode (its validation then answers 400)."""
    try:
        decoded: object = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    return decoded


class StrictBody(MsgspecDTO[T], Generic[T]):
    """Litestar's msgspec DTO, decoding the raw body strictly (Litestar itself coerces
    ``"4"`` to 4); the OpenAPI schema is the model's own."""

    def decode_bytes(self, value: bytes) -> Any:
        """Decode the request body with no coercion."""
        return decode_strict(value, self.model_type)

    @classmethod
    def create_for_field_definition(
        cls,
        field_definition: FieldDefinition,
        handler_id: str,
        backend_cls: Any = None,
    ) -> None:
        """Nothing to prepare: ``decode_bytes`` decodes straight into the model, so a handler
        may annotate ``data`` with a union of the bodies its faces take."""

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        """The request body schema, straight from the model."""
        return schema_creator.for_field_definition(FieldDefinition.from_annotation(cls.model_type))


def strict_body(model: type[msgspec.Struct]) -> type[StrictBody[Any]]:
    """``StrictBody[model]`` for a model chosen at run time (a venue face's hold body)."""
    return StrictBody[model]  # type: ignore[valid-type]
