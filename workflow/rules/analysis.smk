# Calibration E = F / EE (and a two-term alternative) and CO2e of declared workloads.


rule calibrate:
    input:
        energy=paths.MERGED_ENERGY,
        code=library("flopmetrics.analysis.calibration"),
    output:
        fits=paths.CALIBRATION,
        predictions=paths.PREDICTIONS,
    log:
        "logs/analysis/calibrate.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        settings=config["calibration"],
    script:
        "../scripts/calibrate.py"


rule co2e:
    input:
        fits=paths.CALIBRATION,
        code=library("flopmetrics.analysis.co2e"),
    output:
        paths.CO2E,
    log:
        "logs/analysis/co2e.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        settings=config["co2e"],
    script:
        "../scripts/co2e.py"
