"""The prompt templates a feedback database keeps, and through them the policy of every prediction: a prediction
names its template, and its template names the policy it was made in (the card's for one made without a template)."""

from moderation.errors import InvalidInput
from moderation.policy import CARD, Policy
from moderation.templates import Template, template_from_json

from .connection import Connection
from .rows import now


class Templates:
    """The templates of a database, read once each (a template never changes once saved)."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.db = connection.db
        self._read: dict[str, Template] = {}

    def get(self, template_id: str) -> Template:
        """The template saved as ``template_id``; InvalidInput when there is none."""
        if template_id not in self._read:
            with self.connection.lock:
                return self.held(template_id)
        return self._read[template_id]

    def held(self, template_id: str) -> Template:
        """:meth:`get`, for a caller that holds the connection's lock."""
        if template_id not in self._read:
            row = self.db.execute("select text from templates where id = ?", [template_id]).fetchone()
            if row is None:
                raise InvalidInput(f"No template {template_id!r}: save it with save_template() first.")
            self._read[template_id] = template_from_json(row[0])
        return self._read[template_id]

    def policy(self, template_id: str | None) -> Policy:
        """The policy of a prediction made with ``template_id`` (the card's when it names none)."""
        return CARD if template_id is None else self.get(template_id).policy

    def policy_held(self, template_id: str | None) -> Policy:
        """:meth:`policy`, for a caller that holds the connection's lock."""
        return CARD if template_id is None else self.held(template_id).policy

    def save(self, template_id: str, text: str) -> None:
        """Store a prompt template under ``template_id`` (read first: a ``text`` that is no template raises); saving the
        same id again does nothing."""
        if not template_id:
            raise ValueError("Empty template id: pass the template's short hash.")
        if template_id not in self._read:
            self._read[template_id] = template_from_json(text)
        with self.connection.lock, self.connection.transaction():
            self.db["templates"].insert({"id": template_id, "text": text, "created": now()}, ignore=True)


def checked_label(policy: Policy, label, what: str = "A verdict", refusal: type[InvalidInput] = InvalidInput) -> str:
    """``label`` if it is a label of ``policy``; ``refusal`` naming the policy and its labels otherwise."""
    try:
        return policy.check_label(label)
    except InvalidInput as error:
        raise refusal(f"{what} is in the policy {policy.name!r}: {error}", "label") from None
