"""The OpenAPI document's answers: declared once per layer like guards, errors in one shape.

Litestar 2 takes ``responses`` on route handlers only. A router, controller or the app declares
the answers every route under it can give as ``opt=layered({...})``; ``LayeredResponses``
gives each handler those of every layer above it, the nearer layer winning, the handler's own
``responses`` over all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Schema
from litestar.plugins import OpenAPISchemaPlugin, ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.typing import FieldDefinition

from receiver.web.errors import ErrorBody

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

OPT_KEY: Final = "responses"


def layered(responses: Mapping[int, ResponseSpec]) -> dict[str, Any]:
    """The ``opt`` of a layer whose every route can give ``responses``."""
    return {OPT_KEY: dict(responses)}


class LayeredResponses(ReceiveRoutePlugin):
    """Merges the layers' ``opt["responses"]`` into each handler as routes are registered."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            merged: dict[int, ResponseSpec] = {}
            # Not the handler's own opt: Litestar resolved it key by key, so it holds only the
            # nearest layer's dict.
            for layer in handler.ownership_layers[:-1]:
                merged.update((layer.opt or {}).get(OPT_KEY, {}))
            merged.update(handler.responses or {})
            handler.responses = merged


class ErrorBodySchema(OpenAPISchemaPlugin):
    """``ErrorBody`` as a component with no other key allowed: an answer in Litestar's own
    error shape (``status_code``, ``extra``) would fail a client's schema check."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return field_definition.annotation is ErrorBody

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        # As Litestar's own Struct plugin does, so that the schema is a referenced component.
        schema = schema_creator.create_component_schema(
            field_definition,
            required=["detail"],
            property_fields={"detail": FieldDefinition.from_annotation(str, name="detail")},
        )
        schema.additional_properties = False
        schema.description = "Every error answer: `detail` says what was wrong and what to do"
        return schema
