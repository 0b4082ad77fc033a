"""A transformers model in this process: loading (with accelerate), LoRA adapters (peft), label scoring over a cached
prompt prefix, packing, and the card's greedy decoding. The only torch on the serving path."""
