# One rule per registered figure (flopmetrics.figures.registry), one output file per figure;
# each figure's style reaches it through params, so a style edit reruns only that figure.

for fig in FIGURES:

    rule:
        name:
            f"fig_{fig.name}"
        input:
            **figure_inputs(fig),
            code=library(
                fig.module,
                "flopmetrics.jobs.output",
                alone=("flopmetrics.figures.registry",),
            ),
        output:
            report(
                fig.output,
                caption=f"../report/{fig.name}.rst",
                category=fig.category,
                labels=fig.labels,
            ),
        log:
            fig.log(),
        localrule: True
        conda:
            "../../envs/flopmetrics.yaml"
        params:
            figure=fig.name,
            style=fig.style_params(config),
        script:
            "../scripts/plot.py"
