"""Bad credentials: ``session()`` checks them when it opens and raises."""

import sys

from reference import AuthenticationError
from scenarios._common import connect, parser


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__ or "").parse_args(argv)
    with connect(args, project_key="not-the-key") as client:
        try:
            client.session("any-index")
        except AuthenticationError as exc:
            print(f"session() with a wrong key -> {type(exc).__name__}: {exc}")
            return 0
    print("expected session() to reject the credentials")
    return 1


if __name__ == "__main__":
    sys.exit(main())
