"""The Gradio page: one module a tab, each building its own components and wiring its own events."""
