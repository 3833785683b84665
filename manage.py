#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A misconfigured variable is the operator's to fix: one line, no traceback.
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:
        # The reader closed the pipe (`plan ... | head -1`): stop quietly, as Unix tools do; stdout goes to devnull
        # so that the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, what a shell reports for a tool killed by it


if __name__ == "__main__":
    main()
