"""Extend an index across runs: resume, append, push back the combined set.

Run it twice (``--run 1`` then ``--run 2``) as separate processes: the second run resumes
what the first pushed and adds to it."""

import sys

from reference import DocumentInfo
from scenarios._common import connect, parser


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--index", default="meeting-notes")
    p.add_argument("--run", type=int, required=True, help="which run this is (1, 2, ...)")
    p.add_argument("--docs-per-run", type=int, default=3)
    args = p.parse_args(argv)
    with connect(args) as client:
        session = client.session(args.index)
        before = session.doc_count
        new = [
            DocumentInfo(f"run{args.run}-note{i}", f"Run {args.run}, note {i}: follow up item {i}.")
            for i in range(args.docs_per_run)
        ]
        session.add_docs(new)
        session.push_index()
        after = client.get_index(args.index).doc_count
        print(
            f"run {args.run}: resumed {before} docs, appended {len(new)}, cloud now holds {after}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
