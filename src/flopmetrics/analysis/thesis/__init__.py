"""Import and audit the thesis's published Llama energy results (both of its schemas).

``read_architecture(dir)`` finds every file under ``dir`` (the repository's
``experiments/architecture`` tree, or one of its ``results_optimized/`` and
``results_baseline/`` folders), accounts for each in an import log, and returns one row per
record and pass in our schema (``source = "thesis"``), each judged against every datasheet
variant its GPU name may stand for (:mod:`.physics`). Baseline records are also read every way
the thesis read them, side by side (:mod:`.readings`); :mod:`.audit` sums it all up.
"""

from .files import ImportLog, ThesisImportError, read_architecture

__all__ = ["ImportLog", "ThesisImportError", "read_architecture"]
