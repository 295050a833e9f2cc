"""``python -m bot``: see ``bot.cli``."""

import sys


def _run() -> int:
    # The gate hook must block its call whatever fails: Claude Code runs the
    # tool when a hook exits with anything but 2, so even a broken install
    # (an import that fails) has to end in exit 2, not in a traceback's 1.
    if sys.argv[1:2] != ["gate"]:
        from .cli import main

        return main()
    try:
        from .cli import main

        return main()
    except SystemExit:
        raise  # argparse: exit 2 on bad options
    except BaseException as exc:
        print(f"Blocked: the approval gate could not start ({exc!r}). The tool was not run.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_run())
