"""The base class of every operator command: one-line errors, exit codes, readable help.

docs/operations.md promises that bad input ends with *one* clear line on stderr and a non-zero exit, and
never a traceback. Django already prints ``CommandError: <message>`` for errors raised in
``handle``, but a mistake caught by the argument parser (a missing or unknown flag, ``--limit x``)
gets argparse's usage block, which is many lines and buries the actual complaint. Operators and
the scripts that wrap these commands both read the last line, so this class makes the parser say
``<command>: error: <message>`` alone and exit 2, the conventional code for a usage error.
``--help`` is unchanged.

Commands subclass :class:`OperatorCommand` instead of Django's ``BaseCommand`` and raise
:func:`input_error` (exit 2) for a mistake in what the operator asked, or ``CommandError`` with
another ``returncode`` for other outcomes.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser, DjangoHelpFormatter

from wemasy.errors import ApplicationError

#: Exit code of a usage error, as argparse and most Unix tools use it.
EXIT_BAD_INPUT = 2

#: An indented help line with a term and its text, set apart by two or more spaces.
_LIST_ITEM = re.compile(r" +\S.*?\s{2,}(?=\S)")


def input_error(message: str) -> CommandError:
    """The error for a mistake in the operator's input: one line on stderr and exit code 2.

    A ``CommandError`` rather than a subclass, because ``manage.py`` prefixes the message with the
    exception's class name and every command should read the same: ``CommandError: <message>``.
    """
    return CommandError(message, returncode=EXIT_BAD_INPUT)


class OneLineCommandParser(CommandParser):
    """A ``CommandParser`` whose errors are one line, not argparse's usage block plus the error.

    Inside ``call_command`` (tests, other code) Django raises ``CommandError("Error: …")`` instead of
    exiting; that behaviour is kept, only with the usage-error exit code.
    """

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")
        raise CommandError(f"Error: {message}", returncode=EXIT_BAD_INPUT)


class ParagraphHelpFormatter(DjangoHelpFormatter):
    """Keeps the line breaks of a command's ``help`` (lists of exit codes, examples), wrapping each line.

    argparse re-flows the whole description into one paragraph, which turns a table of exit codes
    into a run-on sentence. A one-line ``help`` is wrapped exactly as before.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = textwrap.dedent(text).strip("\n").splitlines()
        return "\n".join(
            textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent + _hanging(line))
            if line.strip()
            else ""
            for line in lines
        )


def _hanging(line: str) -> str:
    """The continuation indent of a wrapped list item (an indented line): under its text, past the term.

    ``"  2  bad input: …"`` continues under ``bad``; a line that is not a list item does not hang.
    """
    item = _LIST_ITEM.match(line)
    return " " * item.end() if item else ""


class OperatorCommand(BaseCommand):
    """``BaseCommand`` with one-line parser errors (exit 2) and help text that keeps its line breaks.

    A service's :class:`~wemasy.errors.ApplicationError` that a command does not handle itself ends the
    command with its message on one line and its ``exit_code``: the one place commands map them.
    """

    def execute(self, *args: Any, **options: Any) -> str | None:
        try:
            return super().execute(*args, **options)
        except ApplicationError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from exc

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", ParagraphHelpFormatter)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds its CommandParser inside create_parser with no hook for the class, and every
        # base option (--verbosity, --settings, …) is added there. Re-classing the finished parser
        # keeps all of that; the subclass adds behaviour only, no state, so the swap is safe.
        parser.__class__ = OneLineCommandParser
        return parser
