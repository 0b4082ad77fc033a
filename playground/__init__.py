"""The Moderation Playground application: one service beneath the Gradio page and the REST API."""
