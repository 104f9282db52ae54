# flopmetrics: FLOPs and energy of ML passes, measured honestly.
# Run: snakemake -c all          (embedded default: config/config.yaml)
#      snakemake --report results/report.html
# Stages: profile (profile.smk: a rule per registered experiment) -> merge -> analysis -> figures.
# Cheap steps are `localrule: True`: they run on the submitting host, never as cluster jobs.


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/profile.smk"
include: "workflow/rules/distributed.smk"
include: "workflow/rules/ncu.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        all_targets(),
    localrule: True
