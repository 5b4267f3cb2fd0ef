"""The ``sessionspec`` command: ``run`` the conformance suite, ``serve`` the mock cloud."""

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessionspec",
        description="Check a session-based semantic-search SDK against the SessionIndex document.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    from conformance.runner import add_arguments as add_run_arguments
    from mock_cloud.serve import add_arguments as add_serve_arguments

    run = commands.add_parser(
        "run",
        help="run the conformance suite against a target and report clause by clause",
        description="Start a mock cloud, run the conformance suite against the target, print "
        "a clause table and write report.json, report.md and junit.xml. Exit status 0 when "
        "every MUST clause that applies to the target passed.",
    )
    add_run_arguments(run)
    serve = commands.add_parser("serve", help="run the mock cloud as an HTTP server")
    add_serve_arguments(serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from conformance.runner import options_from, run

        return run(options_from(args))
    if args.command == "serve":
        from mock_cloud.serve import run as serve

        return serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
