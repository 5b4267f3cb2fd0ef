"""The conformance suite: black-box tests of a target against the SessionIndex document.

Run it with ``sessionspec run`` or ``pytest --pyargs conformance.suite --target SPEC``. A test
is a plain function using the plugin's fixtures (``target``, ``cloud``, ``project``, ``client``,
``make_client``, ``bad_client``, ``index_name``), the helpers in :mod:`conformance.suite.helpers`
and ``@pytest.mark.clause("ID")``; its docstring ends with a ``Troubleshooting:`` line that the
report shows when it fails.
"""
