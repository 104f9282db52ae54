# Calibration E = F / EE (and a two-term alternative) and CO2e of declared workloads.


rule calibrate:
    input:
        "results/merged/energy.parquet",
    output:
        fits="results/calibration/calibration.parquet",
        predictions="results/calibration/predictions.parquet",
    log:
        "logs/analysis/calibrate.log",
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        settings=config["calibration"],
    script:
        "../scripts/calibrate.py"


rule co2e:
    input:
        "results/calibration/calibration.parquet",
    output:
        "results/co2e/co2e.parquet",
    log:
        "logs/analysis/co2e.log",
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        settings=config["co2e"],
    script:
        "../scripts/co2e.py"
