"""`mater-tf models`: the trained models shipped inside the package, and their cards.

mater-tf models          the built-ins, one line each (the default first)
mater-tf models NAME     the card of one: data, figures with protocol and n, use, licence, files
"""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="the built-in models (mater-tf predict's default) and their cards",
        description=(
            "Lists the trained models that ship inside mater-tf, or prints one's card: what it was "
            "trained on, its accuracy on speakers it never heard (protocol and n), what it is for and "
            "not for, its licence and its files' checksum."
        ),
    )
    parser.add_argument("name", nargs="?", help="a built-in model's name: print its card")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from mater_tf import builtin

    if args.name:
        builtin.verified_path(builtin.get(args.name))  # a damaged install says so here too
        print(builtin.card_markdown(args.name), end="")
        return 0
    default = builtin.default_name()
    for name in builtin.builtin_names():
        model = builtin.get(name)
        role = (
            "mater-tf predict's default"
            if name == default
            else f"shown beside {default}'s voice where a video shows a face"
            if model.kind == "face"
            else "mater-tf predict --model " + name
        )
        print(
            f"{name:<16}{model.kind:<7}{model.card['headline']} ({role}; licence {model.card['licence_name']})"
        )
    print("mater-tf models NAME prints a model's card (docs/models.md has them all)")
    return 0
