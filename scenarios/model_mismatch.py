"""Model mismatch: resuming an index with a different ``model_id`` raises ``ValueError``;
omitting ``model_id`` adopts the stored model."""

import sys

from reference import DocumentInfo
from scenarios._common import connect, parser


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--index", default="mismatch-demo")
    args = p.parse_args(argv)
    with connect(args) as client:
        first = client.session(args.index, model_id="custom")
        first.add_docs([DocumentInfo("a", "alpha", embedding=[1.0, 0.0])])
        first.push_index()
        print(f"pushed {args.index!r} built with model 'custom'")
        adopted = client.session(args.index)
        print(f"session() without model_id adopts {adopted.model_id!r}")
        try:
            client.session(args.index, model_id="moss-minilm")
        except ValueError as exc:
            print(f"session(model_id='moss-minilm') -> ValueError: {exc}")
            return 0
    print("expected a ValueError and got none")
    return 1


if __name__ == "__main__":
    sys.exit(main())
