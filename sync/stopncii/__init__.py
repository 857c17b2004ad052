"""A StopNCII-compatible view of a feed, so that Meta's ``threatexchange`` CLI and
Hasher-Matcher-Actioner subscribe to hashsync without code (docs/sync-api.md, "StopNCII
compatibility").

``GET /api/v1/stopncii/<feed>/v1/FetchHashes?startTimestamp=&pageSize=&nextPageToken=`` answers
what StopNCII.org's ``FetchHashes`` answers, for the feed's PDQ hashes. The client's base-URL
override is ``…/api/v1/stopncii/<feed>/v1`` (its credentials are global to the exchange, and
its collaboration config holds nothing, so the feed has to be in the URL). The member token
travels in the ``x-functions-key`` and ``Ocp-Apim-Subscription-Key`` headers.

Order comes from releases, never from the wall-clock time of a change. The timestamp of feed
version ``v`` is its *clock*::

    ts(v) = v + max(epoch_seconds(u.created_at) - u  for the feed's versions u <= v)

the release time of ``v``, pushed forward just enough to be strictly increasing in ``v`` whatever
the clocks of the cutting hosts did (and at least ``v - u`` above the time of every earlier
version ``u``, so a version cut later always gets a larger timestamp). A client that sends
``startTimestamp=ts(v)`` holds exactly the feed's versions up to ``v``; it gets, in (version,
key) order, the PDQ records of the published delta bundles of the later versions — upserts as
``Active``, removals as ``Deleted``. A client whose ``startTimestamp`` is before the feed's first
version holds nothing: it gets the current membership instead (nothing to delete), stamped with
the version it was read at, and the deltas after that version on its next fetch.
"""

from __future__ import annotations

from sync.stopncii.auth import StopNCIIKeyAuthentication
from sync.stopncii.cursor import Clocked, Cursor, token_decode, token_encode
from sync.stopncii.paging import Page, fetch_page
from sync.stopncii.views import StopNCIIFetchHashesApi

__all__ = [
    "Clocked",
    "Cursor",
    "Page",
    "StopNCIIFetchHashesApi",
    "StopNCIIKeyAuthentication",
    "fetch_page",
    "token_decode",
    "token_encode",
]
