"""Targets for the plugin's own tests, copied next to a sample test file and loaded by
``--target fake_targets:NAME`` in a pytest subprocess."""


class Bare:
    """A target with no capabilities; never asked for a client in these tests."""

    name = "bare"
    capabilities = frozenset()

    def client(self, **kw):
        raise AssertionError("no client expected")

    def document(self, id, text, metadata=None, embedding=None):
        return None

    def query_options(self, **kw):
        return None

    def get_documents_options(self, **kw):
        return None


BARE = Bare()


class Gone(Bare):
    unavailable_reason = "sdk X is not installed"


GONE = Gone()
