"""The conformance suite: clause registry, targets, pytest plugin, report and the
``sessionspec`` command."""
