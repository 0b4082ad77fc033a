"""The OpenAPI document at ``/openapi.json`` (and ``/docs``): FastAPI's, made from the routes as this server's options
built them, with the error model that the routes' error answers name, and without the 422 that FastAPI adds to every
route that validates its input: this server answers those with 400, which each route documents."""

from fastapi import FastAPI

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
        return app.openapi_schema

    app.openapi = document


def error_schemas() -> dict:
    """The error model's schema and those it refers to, by name."""
    schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), ErrorResponse.__name__: schema}
