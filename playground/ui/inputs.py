"""A value an input cannot take (a choice not offered, a value of the wrong type or shape, a file that was not
uploaded to this server, as a hand-made API call can send) is answered with a message saying what to send, before
anything reads it, and writes no traceback to the server's log."""

import html
import reprlib

import gradio as gr
from gradio.components import Component
from gradio_client.utils import is_file_obj_with_meta, traverse
from pydantic import ValidationError

from moderation.errors import InvalidInput

from ..uploads import Uploads

SHOWN_VALUE = 80
"""Characters of a refused value that the message repeats."""
SHAPES = {
    gr.Dataframe: 'a table: {"headers": ["text", "label"], "data": [["a text", "casual"], ...]}',
    gr.File: "a file uploaded through the page (with gradio_client: handle_file(path))",
}
"""What to send to the inputs whose value has a shape, checked before Gradio reads it."""

_shown = reprlib.Repr()
_shown.maxlevel, _shown.maxstring, _shown.maxother = 3, SHOWN_VALUE, SHOWN_VALUE


def refusal(component: Component, payload, error: Exception | None = None) -> gr.Error:
    """The message for a value ``component`` cannot take (``error``: why, when it is not the value's shape)."""
    name = component.label or "A field"
    shown = _shown.repr(payload)[:SHOWN_VALUE]
    choices = getattr(component, "choices", None)
    if choices:
        offered = ", ".join(str(value) for _, value in choices)
        message = f"{name}: {shown} is not in the list of choices; choose one of: {offered}."
    elif error is None:
        message = f"{name}: cannot take {shown}; send {SHAPES[type(component)]}."
    else:
        message = f"{name}: cannot take {shown} ({error})."
    return _shown_error(message)


def refuse_clearly(blocks: gr.Blocks) -> None:
    """Make every component of ``blocks`` answer a value it cannot take with :func:`refusal`."""
    for block in blocks.blocks.values():
        if isinstance(block, Component):
            block.preprocess = _refusing(block)
    process_api = blocks.process_api

    async def shaped(block_fn, inputs, *args, **kwargs):
        for component, value in _inputs(blocks, block_fn, inputs):
            if type(component) in SHAPES and value is not None:
                try:
                    component.data_model.model_validate(value, context={"validate_meta": True})
                except ValidationError:
                    raise refusal(component, value) from None
        return await process_api(block_fn, inputs, *args, **kwargs)

    blocks.process_api = shaped


def only_uploads(blocks: gr.Blocks, uploads: Uploads) -> None:
    """Make every event of ``blocks`` refuse, before anything opens it, a file in its inputs that is not one of
    ``uploads`` (whichever input holds it); the uploads an event used are removed once it ends."""
    process_api = blocks.process_api

    async def checked(block_fn, inputs, *args, **kwargs):
        files = []
        for component, value in _inputs(blocks, block_fn, inputs):
            for path in _file_paths(value):
                try:
                    files.append(uploads.file(path))
                except InvalidInput as error:
                    raise _shown_error(f"{component.label or 'A file'}: {error}") from None
        try:
            return await process_api(block_fn, inputs, *args, **kwargs)
        finally:
            uploads.used(files)

    blocks.process_api = checked


def _inputs(blocks: gr.Blocks, block_fn, inputs: list) -> list[tuple[Component, object]]:
    """(component, value sent) of each input of an event (``block_fn``: the event, or its index)."""
    if isinstance(block_fn, int):
        block_fn = blocks.fns[block_fn]
    return list(zip(block_fn.inputs, inputs))


def _file_paths(value) -> list:
    """The paths of the files a value holds, as Gradio would find them to read them."""
    paths = []
    traverse(value, lambda file: paths.append(file["path"]) or file, is_file_obj_with_meta)
    return paths


def _shown_error(message: str) -> gr.Error:
    return gr.Error(html.escape(message, quote=False), print_exception=False)


def _refusing(component: Component):
    preprocess = component.preprocess

    def refusing(payload):
        try:
            return preprocess(payload)
        except Exception as error:  # Gradio's refusals, whatever their type
            raise refusal(component, payload, error) from None

    return refusing
