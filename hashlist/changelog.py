"""The change log: the one contract between curation and publication.

Curation writes a ``Change`` row for every approved change of an entry, in the approving
transaction, and announces that changes are waiting; publication (the ``distribution`` app)
reads the log and cuts releases from it. Curation never imports publication: publication
connects to ``changes_waiting`` when it is installed (``distribution.apps``). Without a
listener, approved changes simply wait for the next scheduled cut.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the approving transaction, once approved changes wait in the log. A listener
# that starts work must defer it to ``transaction.on_commit`` so that the work sees the rows.
changes_waiting = Signal()


def announce_changes_waiting() -> None:
    changes_waiting.send(sender=announce_changes_waiting)
