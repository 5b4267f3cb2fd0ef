"""Create or resume: the same code whether or not the cloud index exists."""

import sys

from reference import DocumentInfo, QueryOptions
from scenarios._common import connect, parser

DOCS = [
    DocumentInfo("refund", "Refunds are issued within 5 business days."),
    DocumentInfo("shipping", "Orders ship within 24 hours from our warehouse."),
    DocumentInfo("password", "Reset your password from the account settings page."),
]


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--index", default="support-notes")
    p.add_argument("--model-id", default=None)
    args = p.parse_args(argv)
    with connect(args) as client:
        session = client.session(args.index, model_id=args.model_id)
        state = "resumed" if session.doc_count else "started empty"
        print(
            f"session {session.name!r} {state}: {session.doc_count} docs, model {session.model_id}"
        )
        added, updated = session.add_docs(DOCS)
        print(f"add_docs: {added} added, {updated} updated -> {session.doc_count} docs")
        result = session.query("how long does a refund take?", QueryOptions(top_k=2))
        for doc in result.docs:
            print(f"  {doc.score:.3f} {doc.id}: {doc.text}")
        pushed = session.push_index()
        print(f"push_index: {pushed.doc_count} docs, job {pushed.job_id} {pushed.status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
