"""Print one closing line, 'N passed, N failed, N skipped', from a subunit v2 stream on stdin."""
from __future__ import annotations

import sys

import subunit
import testtools


def main() -> int:
    result = testtools.StreamSummary()
    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    result.startTestRun()
    try:
        stream.run(result)
    finally:
        result.stopTestRun()
    failed = len(result.errors) + len(result.failures) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
