"""What the REST API takes and answers, shaped like OpenAI's moderation API (our five labels are the categories)."""

from pydantic import BaseModel, Field

from moderation.labels import LABELS
from moderation.results import ModerationResult


class ModerationRequest(BaseModel):
    input: str | list[str] = Field(description="A text, or a list of texts, to moderate.")
    model: str | None = Field(None, description="The served model's id (see GET /v1/models); optional.")


class ChatRequest(BaseModel):
    user: str = Field(description="The user's message.")
    bot: str = Field(description="The chat bot's reply to it.")
    model: str | None = Field(None, description="The served model's id; optional.")


class Result(BaseModel):
    flagged: bool = Field(description="The label is anything but casual.")
    categories: dict[str, bool] = Field(description="Each label: true for the predicted one.")
    category_scores: dict[str, float] = Field(description="Each label's probability; they sum to 1.")
    label: str
    intervene: bool = Field(description="The label reaches the intervention threshold.")

    @staticmethod
    def of(result: ModerationResult) -> dict:
        """The API's view of a result, as the plain dict that is serialised (the model documents its shape)."""
        return {
            "flagged": result.flagged,
            "categories": {name: name == result.label for name in LABELS},
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
