# Calibration E = F / EE (and a two-term alternative), CO2e of declared workloads, and the
# audit of the thesis's published results.


rule calibrate:
    input:
        energy=paths.MERGED_ENERGY,
        code=library("flopmetrics.analysis.calibration"),
    output:
        fits=paths.CALIBRATION,
        predictions=paths.PREDICTIONS,
        table=report(
            paths.CALIBRATION_TABLE,
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


rule co2e:
    input:
        fits=paths.CALIBRATION,
        energy=paths.MERGED_ENERGY,
        code=library("flopmetrics.analysis.co2e", "flopmetrics.flops.causal_lm"),
    output:
        table=paths.CO2E,
        csv=report(
            paths.CO2E_TABLE,
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
        html=paths.THESIS_AUDIT_REPORT,
        csv=report(
            paths.THESIS_AUDIT_CSV,
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
