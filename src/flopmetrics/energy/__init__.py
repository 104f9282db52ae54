"""Energy: synchronized windows, the meters behind them (NVML counter and sampler, RAPL),
the GPU datasheet and the physics gates every row is judged by."""
