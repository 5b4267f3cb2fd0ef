"""Live-call context: a long-term FAQ index loaded with ``load_index`` plus a short-term
session for the call, both queried on every turn."""

import sys

from reference import DocumentInfo, QueryOptions
from scenarios._common import connect, parser

FAQ = [
    DocumentInfo("faq-hours", "Support is open 9am to 5pm, Monday to Friday."),
    DocumentInfo("faq-refund", "Refunds go back to the original card within 5 business days."),
    DocumentInfo("faq-cancel", "You can cancel a subscription any time from the billing page."),
    DocumentInfo("faq-password", "Use 'forgot password' on the sign-in page to reset it."),
]
TURNS = [
    "Hi, I was charged twice for my order 1042.",
    "Can I get my money back for the duplicate charge?",
    "Also, when can I call you again if this is not fixed?",
]


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--faq-index", default="faq")
    p.add_argument("--call-id", default="call-0001")
    args = p.parse_args(argv)
    with connect(args) as client:
        if args.faq_index not in {i.name for i in client.list_indexes()}:
            faq = client.session(args.faq_index)
            faq.add_docs(FAQ)
            faq.push_index()
            print(f"published the FAQ index {args.faq_index!r} ({len(FAQ)} docs)")
        client.load_index(args.faq_index)
        call = client.session(f"{args.call_id}")
        for turn, utterance in enumerate(TURNS, 1):
            call.add_docs([DocumentInfo(f"turn-{turn}", utterance)])
            long_term = client.query(args.faq_index, utterance, QueryOptions(top_k=1))
            short_term = call.query(utterance, QueryOptions(top_k=2))
            print(f"turn {turn}: {utterance}")
            print(f"  FAQ     -> {long_term.docs[0].id}: {long_term.docs[0].text}")
            print(f"  session -> {', '.join(d.id for d in short_term.docs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
