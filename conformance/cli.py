"""The ``sessionspec`` command."""

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessionspec",
        description="Check a session-based semantic-search SDK against the SessionIndex document.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    from mock_cloud.serve import add_arguments as add_serve_arguments

    serve = commands.add_parser("serve", help="run the mock cloud as an HTTP server")
    add_serve_arguments(serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from mock_cloud.serve import run

        return run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
