"""Training steps across several GPUs of one node: one process per rank (``torchrun``), each
metering its own device in windows that every rank opens and closes together."""
