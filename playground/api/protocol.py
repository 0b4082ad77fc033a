"""What the REST API takes and answers, shaped like OpenAI's moderation API (the labels of the result's policy are the
categories: the card's five unless another policy is published).

The requests are made for one server's limits (``--max-chars``, ``--max-inputs``), so that its OpenAPI document states
them; the service checks them, with messages that say what to change."""

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from feedback.curation import MAX_CHANGE
from feedback.ids import LARGEST
from feedback.rows import STATUSES
from moderation.policy import Policy
from moderation.results import ModerationResult

from ..service import SHOWN_CHARS, Limits
from .patterns import blank_text

MAX_LABEL = 200
"""The longest label a curation request may name (a policy's labels are short; the store names them when refused)."""
MODEL = Field(None, description="Which served model labels (an id of GET /v1/models with the role serving); another "
              "gets 404 listing them. Optional: the default model.")
MOMENTS = ({"type": "string", "format": "date"}, {"type": "string", "format": "date-time"},
           {"type": "string", "maxLength": 0})
"""What ``since`` takes: a date, an RFC 3339 time (Python's ISO reader reads both), or nothing (no bound)."""


def absent_or(*schemas: dict):
    """``json_schema_extra`` for an optional parameter: left out, or one of ``schemas`` (never null: a header or a
    query parameter has no null)."""

    def declared(schema: dict) -> None:
        schema.pop("anyOf", None)
        schema.update(schemas[0] if len(schemas) == 1 else {"anyOf": list(schemas)})

    return declared


def request_models(limits: Limits) -> tuple[type[BaseModel], type[BaseModel]]:
    """The request bodies of ``POST /v1/moderations`` and ``POST /v1/moderations/chat`` under ``limits``."""

    def shown(schema: dict) -> None:
        schema.update({"minLength": 1, "maxLength": limits.max_chars, "not": {"pattern": blank_text()}})

    text = Annotated[str, Field(json_schema_extra=shown, description=f"A text that is not blank, of at most "
                                f"{limits.max_chars} characters (--max-chars).")]

    class ModerationRequest(BaseModel):
        input: text | Annotated[list[text], Field(json_schema_extra={"minItems": 1, "maxItems": limits.max_inputs})] = (
            Field(description=f"A text, or a list of 1 to {limits.max_inputs} texts (--max-inputs), to moderate."))
        model: str | None = MODEL

    class ChatRequest(BaseModel):
        user: text = Field(description="The user's message.")
        bot: text = Field(description="The chat bot's reply to it.")
        model: str | None = MODEL

    return ModerationRequest, ChatRequest


class Result(BaseModel):
    flagged: bool = Field(description="The label is anything but the policy's least severe one (casual, for the "
                          "card's policy).")
    categories: dict[str, bool] = Field(description="Each label of the policy that labelled the text (GET /v1/models "
                                        "names it): true for the predicted one.")
    category_scores: dict[str, float] = Field(description="Each label of the policy: its probability; they sum to 1.")
    label: str
    intervene: bool = Field(description="The label reaches the intervention threshold.")

    @staticmethod
    def of(result: ModerationResult) -> dict:
        """The API's view of a result, as the plain dict that is serialised (the model documents its shape)."""
        return {
            "flagged": result.flagged,
            "categories": {name: name == result.label for name in result.scores},
            "category_scores": result.scores,
            "label": result.label,
            "intervene": result.intervene,
        }


class ModerationResponse(BaseModel):
    id: str
    model: str
    results: list[Result]


class ChatResponse(BaseModel):
    id: str
    model: str
    user: Result
    bot: Result
    reply: str = Field(description="The bot's reply, or the intervention message.")
    intervened: bool
    triggered_by: list[str] = Field(description="The sides (user, bot) that reached the threshold.")


class PolicyCard(BaseModel):
    name: str
    id: str = Field(description="A hash of everything the policy is: it changes with any change of it.")
    labels: list[str] = Field(description="Its labels, least severe first: the categories of a result.")

    @staticmethod
    def of(policy: Policy) -> dict:
        """The API's view of a policy."""
        return {"name": policy.name, "id": policy.id, "labels": list(policy.labels)}


class ModelCard(BaseModel):
    id: str = Field(description="The model's name: a serving one's is what to give as ``model``.")
    object: Literal["model"]
    owned_by: str
    role: Literal["serving", "shadow", "trained"] = Field(
        description="serving: it answers (the default one when ``model`` is left out, or the one named); shadow: it "
        "labels the default's texts beside it, off the request path; trained: a version trained here, which can be "
        "served in place of the default (POST /v1/versions/{version}/serve).")
    default: bool = Field(description="Whether it answers a request that names no ``model``.")
    policy: PolicyCard = Field(description="The policy it labels in: the published one for the default model and the "
                               "shadow, its own for a model served beside the default, the one it was trained in for a "
                               "trained version (it serves only with it).")


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


def serve_request(limits: Limits) -> type[BaseModel]:
    """The body of ``POST /v1/versions/{version}/serve`` under ``limits``."""

    class ServeRequest(BaseModel):
        reason: str | None = Field(None, max_length=limits.max_note, description="Why the version should serve even "
                                   "if the gate refuses it: an override, kept with who gave it and the refused "
                                   "figures. Without it, a refusal is answered with 409.")
        reviewer: str | None = Field(None, max_length=limits.max_name, description="Who serves it, when logins are "
                                     "off (with --auth, the reviewer logged in).")

    return ServeRequest


class Served(BaseModel):
    model: str = Field(description="The version that serves now.")
    action: Literal["serve", "override"] = Field(description="serve: the gate allowed it; override: it serves "
                                                 "despite the gate, for the reason given.")
    gate: dict = Field(description="The gate's decision: allowed, its reasons, the runs, how many texts, the figures "
                       "with the interval of their change, and the benign regressions.")


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="ok: the server is up, its model loaded; degraded: it "
                                              "answers, but its feedback database cannot be written.")
    reason: str | None = Field(None, description="Why it is degraded (SQLite's words, like 'database or disk is "
                               "full').")
    model: str = Field(description="The model served now.")


class ErrorDetail(BaseModel):
    message: str = Field(description="What is wrong, and what to change.")
    type: Literal["invalid_request_error", "server_error"]
    param: str | None = Field(description="The field at fault, when one is known (input[1], model, ...).")
    code: int = Field(description="The HTTP status.")


class ErrorResponse(BaseModel):
    """An error in OpenAI's shape."""

    error: ErrorDetail


def curation_request(limits: Limits) -> type[BaseModel]:
    """The request body of ``POST /v1/feedback/verdicts/bulk`` under ``limits`` (a search is a text of at most
    ``--max-chars`` characters)."""

    class Shown(BaseModel):
        id: Annotated[int, BeforeValidator(_not_text)] = Field(ge=1, le=LARGEST, description="The verdict's id (as "
                                                              "the full export names it).")
        updated: str = Field(None, min_length=1, max_length=SHOWN_CHARS, json_schema_extra=_no_default,
                             description="Its updated time as you were shown it (the full export's updated): when "
                             "it changed since, the change is refused (409). Leave it out to take the verdict as it "
                             "is now.")

    class Filters(BaseModel):
        status: Literal[STATUSES] = Field(None, json_schema_extra=_no_default, description="Only this status.")
        label: str = Field(None, min_length=1, max_length=MAX_LABEL, json_schema_extra=_no_default,
                           description="Only this reviewer label.")
        disagree: bool = Field(False, strict=True, description="Only verdicts whose label differs from the model's.")
        search: str = Field(None, max_length=limits.max_chars, json_schema_extra=_no_default,
                            description="Only texts with this phrase (full-text search; blank: any text).")

    class CurationChange(BaseModel):
        status: Literal[STATUSES] = Field(None, json_schema_extra=_no_default, description="The status to set.")
        label: str = Field(None, min_length=1, max_length=MAX_LABEL, json_schema_extra=_no_default,
                           description="The label to set, one of each verdict's policy (that of its prediction; "
                           "another is refused with 400): a verdict becomes right when it is the model's label, "
                           "else wrong.")
        verdicts: list[Shown] = Field(None, min_length=1, max_length=MAX_CHANGE, json_schema_extra=_no_default,
                                      description=f"The verdicts to change (at most {MAX_CHANGE:,}).")
        filters: Filters = Field(None, json_schema_extra=_no_default,
                                 description=f"Or every verdict these filters keep (at most {MAX_CHANGE:,}: more is "
                                 "a 409).")
        model_config = {"json_schema_extra": {"allOf": [
            {"anyOf": [{"required": ["status"]}, {"required": ["label"]}]},
            {"oneOf": [{"required": ["verdicts"]}, {"required": ["filters"]}]}]}}

        @model_validator(mode="after")
        def one_change_of_one_set(self):
            if self.status is None and self.label is None:
                raise ValueError("give a status or a label to set")
            if (self.verdicts is None) == (self.filters is None):
                raise ValueError("give either verdicts or filters")
            return self

    return CurationChange


class CurationDone(BaseModel):
    batch: int | None = Field(description="The batch that POST /v1/feedback/batches/{batch}/undo takes back; null "
                              "when no verdict needed a change.")
    changed: list[int] = Field(description="The verdicts changed.")
    unchanged: list[int] = Field(description="The verdicts that were so already.")
    updated: str | None = Field(description="The updated time of the changed verdicts now.")

    @staticmethod
    def of(done: dict) -> dict:
        """The API's view of a change (``Curation.change``'s answer)."""
        changed = done["changed"]
        return {"batch": done["batch"], "changed": [row["id"] for row in changed],
                "unchanged": [row["id"] for row in done["unchanged"]], "updated": changed[0]["updated"] if changed
                else None}


class Undone(BaseModel):
    batch: int
    restored: list[int] = Field(description="The verdicts that are as they were before the batch again.")


def _not_text(value):
    """A number as JSON has it (``3``, or ``3.0``, the same integer), never a string of digits nor true or false."""
    if isinstance(value, (str, bool)):
        raise ValueError(f"give a number, not {'text' if isinstance(value, str) else 'true or false'}")
    return value


def _no_default(schema: dict) -> None:
    """An optional field that is left out, never null: the document shows no default."""
    schema.pop("default", None)
