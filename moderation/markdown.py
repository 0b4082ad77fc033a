"""User content (texts, notes, names, file names) in Markdown: shown as the string it is, never as markup."""

import re

MARKUP = re.compile(r"[\\`*_~\[\]<>&$|@#+=]|:(?=//)|(?<=www)\.", re.IGNORECASE)
"""What can start markup anywhere in a line (CommonMark, GitHub's tables and autolinks, LaTeX between ``$$``): HTML,
links and images, emphasis, code, entities, table cells, e-mail addresses, and the colon of ``://`` and the dot of
``www.`` (links without brackets). A backslash before any of them makes it literal."""
LINE_START = re.compile(r"^(?:-|\d+[.)])")
"""What starts a list at the start of a line (the other block marks are in :data:`MARKUP`)."""


def markdown_text(value) -> str:
    """``value`` as Markdown that renders as that string, on one line and wherever it is put: line breaks become
    spaces, and a backslash goes before each character that could start markup."""
    text = MARKUP.sub(r"\\\g<0>", " ".join(str(value).splitlines()).strip())
    return LINE_START.sub(lambda mark: f"{mark[0][:-1]}\\{mark[0][-1]}", text)
