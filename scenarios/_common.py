"""Options every scenario takes: the project's credentials and the cloud URLs."""

import argparse
import os

from reference import Client


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--project-id", default=os.environ.get("MOSS_PROJECT_ID", "demo"))
    p.add_argument("--project-key", default=os.environ.get("MOSS_PROJECT_KEY", "demo-key"))
    p.add_argument("--auth-url", default=None, help="default: $MOSS_AUTH_URL")
    p.add_argument("--index-url", default=None, help="default: $MOSS_INDEX_URL")
    return p


def connect(args: argparse.Namespace, *, project_key: str | None = None) -> Client:
    return Client(
        args.project_id,
        project_key or args.project_key,
        auth_url=args.auth_url,
        index_url=args.index_url,
    )
