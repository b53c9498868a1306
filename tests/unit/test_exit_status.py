"""The exit-status table that -h, the man page and the README print (ncfd.manual.EXIT_STATUS), held
to the error classes that make the statuses (ncfd.errors): every code a class carries is listed,
and nothing else but success and the internal error, once each and in order. The words stay the
manual's: some are about --check, and 0 and 70 are no error class."""

from __future__ import annotations

import ncfd.errors
from ncfd.diagnose import VERDICTS
from ncfd.errors import EXIT_INTERNAL, NcfdError
from ncfd.manual import EXIT_STATUS


def error_classes() -> list[type[NcfdError]]:
    found: list[type[NcfdError]] = []
    todo = [NcfdError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def test_the_table_lists_exactly_the_codes_the_error_classes_carry() -> None:
    codes = [code for code, _ in EXIT_STATUS]
    assert codes == sorted(set(codes)), "listed twice, or out of order"
    assert set(codes) == {0, EXIT_INTERNAL} | {cls.exit_code for cls in error_classes()}


def test_every_error_class_is_seen_and_every_check_verdict_exits_with_a_listed_code() -> None:
    defined = {cls for cls in vars(ncfd.errors).values() if isinstance(cls, type) and issubclass(cls, Exception)}
    # Classes of other modules (a PAC server unreachable) are seen too, once imported: their codes are their bases'.
    assert defined == {cls for cls in error_classes() if cls.__module__ == "ncfd.errors"}
    assert {code for _, code, _ in VERDICTS.values()} <= {code for code, _ in EXIT_STATUS}
