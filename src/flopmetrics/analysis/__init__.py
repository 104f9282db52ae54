"""After the jobs: merging tables, calibration E = F / EE, CO2e of declared workloads and the
thesis import."""
