"""The Review tab: every verdict, narrowed as the filters are typed or chosen; the one selected shown whole (its text,
the model's label, every verdict on its text, its status) to accept, discard or relabel; the rows checked (or all that
match the filters) changed at once, in one batch that Undo takes back. Every action's message names its verdicts and
quotes their texts, and an action on a verdict that changed since it was shown is refused."""

import gradio as gr

from feedback.rows import STATUSES, named
from moderation.errors import InvalidInput, NotFound
from moderation.markdown import markdown_text

from .common import ANY, Page, label_choice, label_choices, optional, shown_errors

COLUMNS = ["✓", "id", "text", "reviewer label", "status", "split", "model label", "reviewer"]
"""The table's columns, those a curator needs first leftmost; the time, the verdict and the note show on selection."""
WIDTHS = ["36px", "64px", "36%", "185px", "90px", "56px", "185px", "110px"]
"""The columns' widths: the table fits a window 1280 pixels wide."""
CELL_CHARS = 60
"""How much of a cell the table shows (a long text is cut short; a click on it, or selecting its row, shows it
whole)."""
CHECKED, UNCHECKED = "☑", "☐"
NAMED = 3
"""How many verdicts a message about many names, before it counts the rest."""
HELP = ("The table narrows as you type or choose a filter. Click a row to see its verdict whole, then Accept, "
        f"Discard or Relabel it; click its {UNCHECKED} to check it (or **Select all matching**) to change many at "
        "once, in one batch that Undo takes back. An action on a verdict that changed since it was shown is refused, "
        "and the table shows it as it is now.")


def build(page: Page) -> None:
    """The tab and its events: /review (as the filters change, when the tab opens, and on Refresh), /accept, /discard
    and /relabel (the selected verdict), /select_all, /bulk_accept, /bulk_discard and /bulk_relabel (the checked
    ones), and /undo_batch."""
    service = page.service
    with gr.Tab("Review") as tab:
        gr.Markdown(HELP)
        with gr.Row():
            status = gr.Dropdown([ANY, *STATUSES], value=ANY, label="Status")
            label = gr.Dropdown([ANY, *service.settings.policy.listed], value=ANY, label="Reviewer label",
                                allow_custom_value=True)
            disagree = gr.Checkbox(label="Model label differs from reviewer label")
            search = gr.Textbox(label="Search texts", placeholder="Type: the table narrows as you type")
            refresh = gr.Button("Refresh", size="sm", scale=0)
        table = gr.Dataframe(headers=COLUMNS, datatype="str", interactive=False, wrap=False, max_chars=CELL_CHARS,
                             column_widths=WIDTHS, label="Verdicts", elem_id="review-table")
        with gr.Row():
            select_all = gr.Button("Select all matching", size="sm", scale=0)
            clear = gr.Button("Clear checks", size="sm", scale=0)
            summary = gr.Markdown(_summary({}), elem_id="review-checked")
        with gr.Row(visible=False) as bulk:
            bulk_accept = gr.Button("Accept", variant="primary")
            bulk_discard = gr.Button("Discard", variant="stop")
            bulk_relabel = gr.Button("Relabel")
        with gr.Group():
            text = gr.Textbox(label="Selected verdict", interactive=False, lines=2,
                              placeholder="Click a row to see its verdict here")
            details = gr.Markdown(elem_id="review-details")
        with gr.Row():
            new_label = label_choice(service.settings.policy, "New label (for Relabel)")
            accept = gr.Button("Accept", variant="primary")
            discard = gr.Button("Discard", variant="stop")
            relabel_button = gr.Button("Relabel")
        with gr.Row():
            result = gr.Textbox(label="Result", interactive=False, scale=4)
            undo = gr.Button("Undo", visible=False, scale=1)
        # what the API passes and the page keeps: the selected verdict, the time it was updated when it was shown,
        # and the last batch (hidden); the rows in the table and the rows checked (this session's)
        verdict_id = gr.Number(label="Selected verdict id", visible=False)
        shown = gr.Textbox(value="", label="Shown as updated at", visible=False)
        batch = gr.Number(label="Batch", visible=False)
        listed, checked = gr.State([]), gr.State({})

    @shown_errors
    def review(status: str, label: str, disagree: bool, search: str):
        """The verdicts matching the filters, newest first, as table rows (no row checked)."""
        rows = service.verdicts(status=optional(status), label=optional(label), disagree=disagree, search=search)
        kept = [{key: row[key] for key in ("id", "updated", "text", "label", "status", "split", "model_label",
                                           "reviewer")} for row in rows]
        return _table(kept, {}), kept, {}, _summary({})

    @shown_errors
    def select(rows: list, ticked: dict, event: gr.SelectData):
        """A click on a row's box checks or unchecks it; a click elsewhere selects the row and shows it whole."""
        row = next((row for row in rows if str(row["id"]) == str(event.row_value[1])), None)
        if row is None:
            return (gr.skip(),) * 7
        if event.index[1] == 0:
            ticked = dict(ticked)
            if ticked.pop(row["id"], None) is None:
                ticked[row["id"]] = row["updated"]
            return _table(rows, ticked), ticked, _summary(ticked), *(gr.skip(),) * 4
        return *(gr.skip(),) * 3, *show(row["id"])

    @shown_errors
    def show(verdict) -> tuple:
        """The selected verdict's id, the time it was updated, its text and the rest of it (blank when it is gone)."""
        try:
            row = service.verdict(verdict) if verdict is not None else None
        except NotFound:
            row = None
        return (row["id"], row["updated"], row["text"], _details(row)) if row else (None, "", "", "")

    def refreshed(status: str, label: str, disagree: bool, search: str, verdict):
        """The table and the selected verdict as they are stored now."""
        return *review(status, label, disagree, search), *show(verdict)

    @shown_errors
    def select_matching(status: str, label: str, disagree: bool, search: str, rows: list):
        """Check every verdict that matches the filters (those beyond the table too), as they are now."""
        ticked = service.matching(status=optional(status), label=optional(label), disagree=disagree, search=search)
        return _table(rows, ticked), ticked, _summary(ticked, everything=True)

    def clear_checks(rows: list):
        return _table(rows, {}), {}, _summary({})

    def buttons(ticked: dict):
        """The bulk buttons, each saying how many verdicts it changes; shown while some are checked."""
        count = f"{len(ticked):,} verdict{'s' if len(ticked) != 1 else ''}"
        return (gr.Row(visible=bool(ticked)), gr.Button(f"Accept {count}"), gr.Button(f"Discard {count}"),
                gr.Button(f"Relabel {count} as the new label"))

    def act(verdict, seen: str, name: str, request: gr.Request, **change) -> str:
        row = (service.set_status(verdict, change["status"], shown=seen, curator=page.reviewer(name, request))
               if "status" in change else
               service.relabel(verdict, change["label"], shown=seen, curator=page.reviewer(name, request)))
        told = f"now {row['status']}" if "status" in change else f"now labelled {row['label']} ({row['verdict']})"
        return f"{_capitalized(named(row))} is {told}."

    @shown_errors
    def accept_verdict(verdict, seen: str, name: str, request: gr.Request) -> str:
        """Accept the selected verdict for training."""
        return act(verdict, seen, name, request, status="accepted")

    @shown_errors
    def discard_verdict(verdict, seen: str, name: str, request: gr.Request) -> str:
        """Keep the selected verdict out of training."""
        return act(verdict, seen, name, request, status="discarded")

    @shown_errors
    def relabel(verdict, new: str, seen: str, name: str, request: gr.Request) -> str:
        """Give the selected verdict another correct label."""
        return act(verdict, seen, name, request, label=new)

    def bulk_change(ticked: dict, name: str, request: gr.Request, **change):
        if not ticked:
            raise InvalidInput(f"No verdict checked: click a row's {UNCHECKED} to check it, or select all that match "
                               "the filters.")
        done = service.change(ticked, curator=page.reviewer(name, request), **change)
        return _bulk_result(done, change), done["batch"], _undo_button(done["batch"])

    @shown_errors
    def accept_checked(ticked: dict, name: str, request: gr.Request):
        """Accept every checked verdict, in one batch."""
        return bulk_change(ticked, name, request, status="accepted")

    @shown_errors
    def discard_checked(ticked: dict, name: str, request: gr.Request):
        """Discard every checked verdict, in one batch."""
        return bulk_change(ticked, name, request, status="discarded")

    @shown_errors
    def relabel_checked(ticked: dict, new: str, name: str, request: gr.Request):
        """Give every checked verdict the new label, in one batch."""
        return bulk_change(ticked, name, request, label=new)

    @shown_errors
    def undo_batch(number, name: str, request: gr.Request):
        """Take a batch back: each of its verdicts as it was before."""
        done = service.undo(number, curator=page.reviewer(name, request))
        return (f"Batch #{done['batch']} is undone: {_listed(done['restored'])} are as they were before it.", None,
                _undo_button(None))

    filters = [status, label, disagree, search]
    reviewed = [table, listed, checked, summary]
    selected = [verdict_id, shown, text, details]
    gr.on([tab.select, refresh.click, status.change, label.change, disagree.change, search.change], review, filters,
          reviewed, api_name="review", trigger_mode="always_last", show_progress="hidden")
    table.select(select, [listed, checked], [table, checked, summary, *selected], api_visibility="private")
    verdict_id.change(lambda verdict: label_choices(service.verdict_policy(verdict)), verdict_id, new_label,
                      api_visibility="private")
    select_all.click(select_matching, [*filters, listed], [table, checked, summary], api_name="select_all")
    clear.click(clear_checks, listed, [table, checked, summary], api_visibility="private")
    checked.change(buttons, checked, [bulk, bulk_accept, bulk_discard, bulk_relabel], api_visibility="private")
    for button, action, inputs, outputs, name in (
        (accept, accept_verdict, [verdict_id, shown], result, "accept"),
        (discard, discard_verdict, [verdict_id, shown], result, "discard"),
        (relabel_button, relabel, [verdict_id, new_label, shown], result, "relabel"),
        (bulk_accept, accept_checked, [checked], [result, batch, undo], "bulk_accept"),
        (bulk_discard, discard_checked, [checked], [result, batch, undo], "bulk_discard"),
        (bulk_relabel, relabel_checked, [checked, new_label], [result, batch, undo], "bulk_relabel"),
        (undo, undo_batch, [batch], [result, batch, undo], "undo_batch"),
    ):  # done or refused, the table and the selected verdict then show what is stored
        done = button.click(action, [*inputs, page.name], outputs, api_name=name)
        for then in (done.success, done.failure):
            then(refreshed, [*filters, verdict_id], [*reviewed, *selected], api_visibility="private",
                 show_progress="hidden")


def _table(rows: list[dict], ticked: dict) -> list[list]:
    """The table's rows: each verdict's box (checked or not) and the columns of :data:`COLUMNS`."""
    return [[CHECKED if row["id"] in ticked else UNCHECKED, row["id"], row["text"], row["label"], row["status"],
             row["split"] or "", row["model_label"] or "", row["reviewer"]] for row in rows]


def _summary(ticked: dict, *, everything: bool = False) -> str:
    if not ticked:
        return f"No row checked: click a row's {UNCHECKED} to check it, or select all that match the filters."
    every = ": all that match the filters" if everything else ""
    return f"**{len(ticked):,} checked**{every}. The buttons below change them all, in one batch."


def _details(row: dict) -> str:
    """The selected verdict in Markdown (user content as text): its status and its text's split, who gave it and when,
    its label against the model's, its note, and every verdict on its text with the text's final label."""
    when = row["created"][:19].replace("T", " ")
    note = f"\n\nNote: {markdown_text(row['note'])}" if row["note"] else ""
    others = " · ".join(f"#{other['id']} {markdown_text(other['reviewer'])}: {other['label']} ({other['status']})"
                        for other in row["on_text"])
    final = (f"{row['final_label']} (set by {markdown_text(row['final_label_by'])})" if row["final_label"] else
             "none set")
    split = f" · split **{row['split']}**" if row["split"] else ""
    return (f"**Verdict #{row['id']}** · **{row['status']}**{split} · by {markdown_text(row['reviewer'])}, {when} UTC"
            f" · says **{row['label']}** ({row['verdict']}); the model said "
            f"**{row['model_label'] or 'no label'}**{note}"
            f"\n\nEvery verdict on this text: {others} · final label: {final}")


def _listed(rows: list[dict]) -> str:
    """Verdicts named in a message: the first :data:`NAMED` with their texts quoted, then how many more."""
    names = ", ".join(named(row) for row in rows[:NAMED])
    return f"{names} and {len(rows) - NAMED:,} more" if len(rows) > NAMED else names


def _bulk_result(done: dict, change: dict) -> str:
    """What a bulk change did: its batch, the verdicts it changed (named), and those that were so already."""
    what = f"now {change['status']}" if "status" in change else f"now labelled {change['label']}"
    unchanged = len(done["unchanged"])
    already = f" {unchanged:,} were so already." if unchanged else ""
    if done["batch"] is None:
        return f"Nothing changed: the {unchanged:,} verdicts checked were so already."
    return (f"Batch #{done['batch']}: {len(done['changed']):,} verdicts {what}: {_listed(done['changed'])}.{already} "
            f"Undo batch #{done['batch']} takes them back.")


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _undo_button(batch: int | None) -> gr.Button:
    return gr.Button(f"Undo batch #{batch}", visible=True) if batch is not None else gr.Button(visible=False)
