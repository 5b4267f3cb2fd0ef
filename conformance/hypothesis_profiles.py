"""Hypothesis profiles for the suite's property-based tests.

``ci`` (the default) is derandomised and small enough to keep ``sessionspec run`` quick: every
run tries the same programs, so a verdict never flips between two runs of one SDK version.
``dev`` explores more and keeps a database of failures, for hunting bugs locally.

The profile is chosen by ``--hypothesis-profile NAME`` (Hypothesis's own pytest option), else
``$SESSIONSPEC_HYPOTHESIS_PROFILE``, else ``ci``. The profiles are registered when this module is
imported (the plugin imports it), which is before Hypothesis's plugin reads its option.
Tests take the settings from :func:`suite_settings` explicitly rather than through
``settings.load_profile``: the plugin is active in every pytest run of this environment, and
loading a profile globally would change other projects' Hypothesis tests.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

PROFILE_ENV = "SESSIONSPEC_HYPOTHESIS_PROFILE"
DEFAULT_PROFILE = "ci"
CI, DEV = "ci", "dev"

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]

settings.register_profile(
    CI,
    derandomize=True,
    # A derandomised run has nothing to replay, and writing .hypothesis/ into the directory
    # an SDK author runs the suite from would be litter.
    database=None,
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=_SUPPRESSED,
    print_blob=True,
)
settings.register_profile(
    DEV,
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=_SUPPRESSED,
    print_blob=True,
)


def profile_name(config: pytest.Config | None = None) -> str:
    """``--hypothesis-profile`` if given, else ``$SESSIONSPEC_HYPOTHESIS_PROFILE``, else ``ci``."""
    chosen = None
    if config is not None:
        # None when Hypothesis's pytest plugin is disabled (-p no:hypothesispytest).
        chosen = config.getoption("hypothesis_profile", default=None)
    return chosen or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE


def suite_settings(config: pytest.Config | None = None) -> settings:
    """The settings of the chosen profile; an unknown name raises ``InvalidArgument``."""
    return settings.get_profile(profile_name(config))
