"""The bottom layer: what every other package agrees on, importing none of them.

``schema`` (the config schema and its defaults), ``paths`` (where results go), ``errors`` (the
exception types that cross packages) and ``vocabulary`` (the one definition of precisions,
passes, strategies, launches and the columns every per-job table has). Nothing here imports
another flopmetrics package, nor torch, transformers or plotting libraries.
"""
