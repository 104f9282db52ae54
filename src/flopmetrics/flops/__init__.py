"""FLOP counts: closed-form (the MLP, a Llama-style decoder, AdamW) and counted by PyTorch."""
