"""Custom embeddings: ``model_id="custom"`` documents bring their own vectors and every query
passes ``QueryOptions.embedding``."""

import sys

from reference import DocumentInfo, QueryOptions
from scenarios._common import connect, parser


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--index", default="custom-vectors")
    args = p.parse_args(argv)
    with connect(args) as client:
        session = client.session(args.index, model_id="custom")
        session.add_docs(
            [
                DocumentInfo("north", "points north", embedding=[0.0, 1.0, 0.0]),
                DocumentInfo("east", "points east", embedding=[1.0, 0.0, 0.0]),
                DocumentInfo("up", "points up", embedding=[0.0, 0.0, 1.0]),
            ]
        )
        result = session.query("mostly north", QueryOptions(embedding=[0.1, 0.9, 0.0], top_k=3))
        print("query with a vector:", ", ".join(f"{d.id}={d.score:.3f}" for d in result.docs))
        try:
            session.query("no vector")
        except ValueError as exc:
            print(f"query without QueryOptions.embedding -> ValueError: {exc}")
        try:
            session.add_docs([DocumentInfo("bare", "no vector here")])
        except ValueError as exc:
            print(f"document without .embedding -> ValueError: {exc}")
        pushed = session.push_index()
        print(f"pushed {pushed.doc_count} docs with their vectors as given")
    return 0


if __name__ == "__main__":
    sys.exit(main())
