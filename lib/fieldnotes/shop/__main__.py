"""Command line: ``python -m fieldnotes.shop serve | evaluate | load`` (see ``--help`` of each)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run one command."""
    parser = argparse.ArgumentParser(prog="python -m fieldnotes.shop")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the chat API and page with uvicorn")
    serve.add_argument("--db", required=True, help="sqlite:///path or postgresql://user@host:port/db")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--products", type=int, default=500, help="products in the generated shop")
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--nlu", default=None, help="parser file: loaded if it exists, else trained and written")
    serve.add_argument("--train-messages", type=int, default=3000, help="training messages when training")
    serve.add_argument("--timeout-rate", type=float, default=0.0,
                       help="share of payments whose first call times out after charging")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--views", nargs="+", choices=("accented", "folded"), default=["accented", "folded"],
                       help="search views (evaluate's metrics.json names its choice under search_views)")
    serve.add_argument("--no-tcp-nodelay", dest="tcp_nodelay", action="store_false",
                       help="leave Nagle's algorithm on (uvicorn's sockets with --workers >= 2; ~40 ms stalls)")

    evaluate = commands.add_parser("evaluate", help="score understanding, search and task success")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--out", required=True, help="folder for metrics.json")
    evaluate.add_argument("--size", choices=("ci", "book"), default="book")

    load = commands.add_parser("load", help="open-loop load test against a running server")
    load.add_argument("--url", required=True, help="base URL of the server, e.g. http://127.0.0.1:8000")
    load.add_argument("--rate", type=float, required=True, help="dialogues started per second")
    load.add_argument("--seconds", type=float, required=True, help="how long new dialogues start")
    load.add_argument("--out", required=True, help="folder for load.json")
    load.add_argument("--kill-worker-after", type=float, default=None,
                      help="SIGKILL one uvicorn worker this many seconds into the run")
    load.add_argument("--seed", type=int, default=0)

    args = parser.parse_args(argv)
    if args.command == "serve":
        from fieldnotes.lifetime import die_with_starter
        from fieldnotes.shop.server import serve as run_serve

        die_with_starter()  # started by running_server: stop (SIGTERM) if that process is killed

        run_serve(args.db, args.port, workers=args.workers, products=args.products, seed=args.seed,
                  nlu_path=args.nlu, train_messages=args.train_messages, timeout_rate=args.timeout_rate,
                  host=args.host, tcp_nodelay=args.tcp_nodelay, views=tuple(args.views))
    elif args.command == "evaluate":
        from fieldnotes.shop.evaluate import run_evaluation

        print(run_evaluation(seed=args.seed, out=args.out, size=args.size))
    else:
        from fieldnotes.shop.loadtest import run_load

        print(run_load(args.url, rate=args.rate, seconds=args.seconds, out=args.out,
                       kill_worker_after=args.kill_worker_after, seed=args.seed))


if __name__ == "__main__":
    main()
