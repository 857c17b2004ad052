"""The staff web application: server-rendered pages over the apps' services and selectors.

Pages compose several apps (the dashboard shows proposals, releases and imports; an entry's
page shows the releases that carried it and its disputes), so they sit above every app, as the
URL table does. Every action calls the same service as the API, so four-eyes, the stale check
and the audit trail hold exactly as they do there.
"""
