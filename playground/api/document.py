"""The OpenAPI document at ``/openapi.json`` (and ``/docs``): FastAPI's, made from the routes as this server's options
built them, with the error model that the routes' error answers name, without the 422 that FastAPI adds to every
route that validates its input (this server answers those with 400, which each route documents), and with the bounds
of whole numbers as the whole numbers they are."""

from fastapi import FastAPI

from feedback.ids import LARGEST

from .protocol import ErrorResponse

VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def serve_document(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document the one this server's answers follow."""
    generate = app.openapi

    def document() -> dict:
        if app.openapi_schema is None:
            generated = generate()  # kept by FastAPI as app.openapi_schema
            for operations in generated["paths"].values():
                for operation in operations.values():
                    operation["responses"].pop("422", None)
            schemas = generated.setdefault("components", {}).setdefault("schemas", {})
            for name in VALIDATION_SCHEMAS:
                schemas.pop(name, None)
            schemas.update(error_schemas())
            exact_bounds(generated)
        return app.openapi_schema

    app.openapi = document


def error_schemas() -> dict:
    """The error model's schema and those it refers to, by name."""
    schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), ErrorResponse.__name__: schema}


def exact_bounds(node) -> None:
    """Put back the bounds that FastAPI's document model holds as floats: the largest id (2**63 - 1, which a float
    rounds up to 2**63, an id SQLite cannot hold) and the whole numbers, as integers."""
    if isinstance(node, list):
        for item in node:
            exact_bounds(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("minimum", "maximum") and isinstance(value, float) and value.is_integer():
                node[key] = LARGEST if value == float(LARGEST) else int(value)
            else:
                exact_bounds(value)
