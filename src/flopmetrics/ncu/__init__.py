"""Nsight Compute FLOPs: capture passes under ncu, parse and classify every kernel launch."""
