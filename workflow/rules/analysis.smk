# The card-to-card spread, calibration E = F / EE (a two-term alternative and the prediction
# model E = a F + b), energy per operation class, CO2e of declared workloads, and the audit of
# the thesis's published results.


rule card_spread:
    input:
        rows=card_spread_files(),
        code=library("flopmetrics.analysis.spread"),
    output:
        table=paths.CARD_SPREAD,
        csv=paths.CARD_SPREAD_TABLE,
        html=report(
            paths.CARD_SPREAD_HTML,
            caption="../report/card_spread_table.rst",
            category="Calibration and CO2e",
            labels={"table": "card spread"},
        ),
    log:
        "logs/analysis/card_spread.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    script:
        "../scripts/card_spread.py"


rule calibrate:
    input:
        energy=paths.MERGED_ENERGY,
        spread=paths.CARD_SPREAD,
        code=library("flopmetrics.analysis.calibration"),
    output:
        fits=paths.CALIBRATION,
        predictions=paths.PREDICTIONS,
        table=paths.CALIBRATION_TABLE,
        html=report(
            paths.CALIBRATION_HTML,
            caption="../report/calibration_table.rst",
            category="Calibration and CO2e",
            labels={"table": "calibration"},
        ),
    log:
        "logs/analysis/calibrate.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        settings=config["calibration"],
    script:
        "../scripts/calibrate.py"


rule calibrate_serving:
    input:
        rows=paths.MERGED_INFERENCE,
        code=library("flopmetrics.analysis.serving"),
    output:
        table=paths.SERVING_CALIBRATION,
        csv=paths.SERVING_CALIBRATION_TABLE,
    log:
        "logs/analysis/calibrate_serving.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    script:
        "../scripts/calibrate_serving.py"


rule calibrate_steptime:
    input:
        rows=steptime_rows,
        heldout=steptime_heldout_rows,
        code=library(
            "flopmetrics.analysis.steptime",
            "flopmetrics.analysis.steptime_fit",
            "flopmetrics.analysis.steptime_measured",
            "flopmetrics.analysis.steptime_misses",
            "flopmetrics.analysis.steptime_rows",
            "flopmetrics.flops.opstream",
        ),
    output:
        table=paths.STEPTIME_CALIBRATION,
        csv=paths.STEPTIME_CALIBRATION_TABLE,
        steps=paths.STEPTIME_HELDOUT_STEPS,
    log:
        "logs/analysis/calibrate_steptime.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        dirs=steptime_dirs(),
        heldout=steptime_dirs("steptime_heldout_dirs"),
        pool=config["calibration"]["steptime_pool_heldout"],
    script:
        "../scripts/calibrate_steptime.py"


rule class_energy:
    input:
        rows=paths.MERGED_CLASSES,
        code=library("flopmetrics.analysis.class_energy"),
    output:
        table=paths.CLASS_ENERGY,
        csv=paths.CLASS_ENERGY_TABLE,
        validation=paths.CLASS_ENERGY_VALIDATION,
        html=report(
            paths.CLASS_ENERGY_HTML,
            caption="../report/class_energy_table.rst",
            category="Energy per operation class",
            labels={"table": "energy per class"},
        ),
    log:
        "logs/analysis/class_energy.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    script:
        "../scripts/class_energy.py"


rule co2e:
    input:
        unpack(serving_calibration),
        unpack(steptime_calibration),
        fits=paths.CALIBRATION,
        energy=paths.MERGED_ENERGY,
        code=library(
            "flopmetrics.analysis.co2e",
            "flopmetrics.flops.causal_lm",
        ),
    output:
        table=paths.CO2E,
        csv=paths.CO2E_TABLE,
        html=report(
            paths.CO2E_HTML,
            caption="../report/co2e_table.rst",
            category="Calibration and CO2e",
            labels={"table": "CO2e"},
        ),
    log:
        "logs/analysis/co2e.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    params:
        settings=config["co2e"],
    script:
        "../scripts/co2e.py"


rule audit_thesis:
    input:
        rows=paths.MERGED_THESIS,
        code=library("flopmetrics.analysis.thesis.audit", "flopmetrics.jobs.output"),
    output:
        table=paths.THESIS_AUDIT,
        markdown=paths.THESIS_AUDIT_TABLE,
        csv=paths.THESIS_AUDIT_CSV,
        html=report(
            paths.THESIS_AUDIT_REPORT,
            caption="../report/thesis_audit.rst",
            category="Thesis audit",
            labels={"table": "thesis audit"},
        ),
    log:
        "logs/analysis/audit_thesis.log",
    localrule: True
    conda:
        "../../envs/flopmetrics.yaml"
    script:
        "../scripts/audit_thesis.py"
