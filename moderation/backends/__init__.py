"""Where the model runs: the protocol a Moderator talks to (``base``), prompts as token ids (``tokens``), a vLLM
server (``remote``, no torch), and a transformers model in this process (``local/``, the only torch on the serving
path)."""
