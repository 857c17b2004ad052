"""The curated hash list: entries, their hashes, proposals under review, the change log
consumed by the release cutter and bulk-import batches. (The audit trail is the ``audit`` app.)"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from hashlist.changelog import EntryState
from hashlist.frameworks.facts import FACTS, LABELS, NEW_FACTS, UNKNOWN
from hashsync.validation import MAX_LABEL
from hashsync_client.algorithms import ALGORITHM_CHOICES
from hashsync_client.format import AGE_GROUPS, CATEGORIES, CONTENT_TYPES, INDUSTRY_CLASSES

# The grading vocabulary is the protocol core's (what bundles can carry); only the labels people
# read are stated here.
CATEGORY_CHOICES = [(value, f"Category {value}") for value in CATEGORIES]
AGE_GROUP_CHOICES = [
    (value, "Unknown" if value == "unknown" else value.replace("-", "–")) for value in AGE_GROUPS
]
INDUSTRY_CLASS_CHOICES = [(value, value or "Not classified") for value in INDUSTRY_CLASSES]
CONTENT_TYPE_CHOICES = [(value, value.capitalize()) for value in CONTENT_TYPES]
IMAGE = "image"


def _fact_choices(name: str) -> list[tuple[str, str]]:
    return [(value, LABELS[value]) for value in (*FACTS[name], UNKNOWN)]


class EntryStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RETRACTED = "retracted", "Retracted"


def _in(field: str, values: Iterable[str]) -> Q:
    return Q(**{f"{field}__in": list(values)})


class Entry(models.Model):
    """One known item of content (an image or a video) with its grading.

    ``revision`` counts approved changes; a proposal records the revision it was made against and
    is refused on approval when the entry has moved on since (see ``services.proposal_approve``).
    Entries are only ever created or changed by approving a proposal.
    """

    category = models.CharField(max_length=1, choices=CATEGORY_CHOICES)
    age_group = models.CharField(max_length=8, choices=AGE_GROUP_CHOICES)
    # None: not assessed against the Interpol baseline.
    baseline = models.BooleanField(null=True, blank=True)
    industry_class = models.CharField(
        max_length=2, choices=INDUSTRY_CLASS_CHOICES, blank=True, default=""
    )
    content_type = models.CharField(max_length=8, choices=CONTENT_TYPE_CHOICES, default=IMAGE)
    # Facts (hashlist.frameworks.facts): what the analyst saw, from which every framework's
    # class is derived. age_group and content_type above are facts too.
    pubertal_stage = models.CharField(
        max_length=16, choices=_fact_choices("pubertal_stage"), default=UNKNOWN
    )
    activity = models.CharField(max_length=24, choices=_fact_choices("activity"), default=UNKNOWN)
    origin = models.CharField(max_length=20, choices=_fact_choices("origin"), default=UNKNOWN)
    self_generated = models.CharField(
        max_length=8, choices=_fact_choices("self_generated"), default=UNKNOWN
    )
    source = models.CharField(max_length=MAX_LABEL, blank=True, default="")
    # Internal analyst notes: never distributed to members, never in bundles or the change log.
    notes = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=10, choices=EntryStatus.choices, default=EntryStatus.ACTIVE
    )
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "entries"
        constraints = [
            models.CheckConstraint(
                condition=_in("category", CATEGORIES), name="entry_category_valid"
            ),
            models.CheckConstraint(
                condition=_in("age_group", AGE_GROUPS), name="entry_age_group_valid"
            ),
            models.CheckConstraint(
                condition=_in("industry_class", INDUSTRY_CLASSES), name="entry_industry_class_valid"
            ),
            models.CheckConstraint(
                condition=_in("content_type", CONTENT_TYPES), name="entry_content_type_valid"
            ),
            models.CheckConstraint(
                condition=_in("status", EntryStatus.values), name="entry_status_valid"
            ),
            *(
                models.CheckConstraint(
                    condition=_in(name, (*FACTS[name], UNKNOWN)), name=f"entry_{name}_valid"
                )
                for name in NEW_FACTS
            ),
        ]

    def __str__(self) -> str:
        return f"Entry {self.pk} ({self.category}, {self.age_group}, {self.status})"


class Hash(models.Model):
    """One hash of an entry. (algorithm, value) is unique across the whole list, retracted
    entries included, so a hash can never silently belong to two entries."""

    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="hashes")
    algorithm = models.CharField(max_length=16, choices=ALGORITHM_CHOICES)
    value = models.BinaryField(max_length=1024)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["algorithm", "value"], name="hash_unique_algorithm_value"
            ),
            models.CheckConstraint(
                condition=Q(algorithm__in=[name for name, _ in ALGORITHM_CHOICES]),
                name="hash_algorithm_known",
            ),
        ]

    def __str__(self) -> str:
        # Never the value: hashes must not end up in logs or error pages.
        return f"{self.algorithm} hash of entry {self.entry_id}"


class ProposalKind(models.TextChoices):
    CREATE = "create", "Create entry"
    REGRADE = "regrade", "Regrade entry"
    ADD_HASH = "add_hash", "Add hash"
    REMOVE_HASH = "remove_hash", "Remove hash"
    RETRACT = "retract", "Retract entry"
    IMPORT = "import", "Bulk import"
    FRAMEWORK = "framework", "Change a framework's rules"


class ProposalStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    # Only an import: approved, but applying its rows failed (its batch says why); nothing of it
    # was applied. Other kinds are applied in the approving transaction and never reach this.
    FAILED = "failed", "Approved, but applying it failed"


class Proposal(models.Model):
    """A change to the list proposed by one person and reviewed by another.

    ``payload`` holds the validated, canonical change (hash values in canonical text form).
    The four-eyes rule is enforced by the service layer and, as a last line, by a check
    constraint: no row can have its author as its reviewer.
    """

    kind = models.CharField(max_length=12, choices=ProposalKind.choices)
    status = models.CharField(
        max_length=10, choices=ProposalStatus.choices, default=ProposalStatus.PENDING
    )
    entry = models.ForeignKey(
        Entry, on_delete=models.PROTECT, null=True, blank=True, related_name="proposals"
    )
    base_revision = models.PositiveIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    comment = models.TextField(blank=True, default="")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="proposals"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reviewed_proposals",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        permissions = [
            ("propose_change", "Can propose changes to the hash list"),
            ("review_proposal", "Can approve or reject other people's proposals"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=_in("kind", ProposalKind.values), name="proposal_kind_valid"
            ),
            models.CheckConstraint(
                condition=_in("status", ProposalStatus.values), name="proposal_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(reviewer__isnull=True) | ~Q(reviewer=F("author")),
                name="proposal_four_eyes",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["approved", "rejected", "failed"])
                | Q(reviewer__isnull=False),
                name="proposal_reviewed_has_reviewer",
            ),
        ]
        indexes = [
            # Serves the review queue: pending proposals, oldest first.
            models.Index(
                fields=["created_at"],
                condition=Q(status="pending"),
                name="proposal_pending_idx",
            ),
            # Serves the review turnaround report: decisions of the last weeks.
            models.Index(
                fields=["reviewed_at"],
                condition=Q(reviewed_at__isnull=False),
                name="proposal_reviewed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Proposal {self.pk} ({self.kind}, {self.status})"


def approved_by_another(prefix: str = "") -> Q:
    """Proposals approved by a person other than their author: the only ones whose changes may
    exist and be published. ``prefix`` reaches the proposal from another model
    (``"proposal__"`` from a change).

    Stated once here; the database enforces the same rule on every write of a change (triggers
    in migration 0005, held equal to this by tests/hashlist/test_change_guard.py), the release
    cutter takes only changes that satisfy it, and ``audit_verify`` checks it on the chain."""
    return Q(
        **{f"{prefix}status": ProposalStatus.APPROVED, f"{prefix}reviewer__isnull": False}
    ) & ~Q(**{f"{prefix}reviewer": F(f"{prefix}author")})


class Framework(models.Model):
    """A grading scheme members may receive the list in (UK A/B/C, INTERPOL Baseline, …). Its
    rules are the newest of its ``versions``; docs/grading.md."""

    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=MAX_LABEL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class FrameworkVersion(models.Model):
    """One version of a framework's rules (``hashlist.frameworks.rules.Definition`` as JSON).
    Never changed once written: a change is a new version, written by approving a proposal of
    kind ``framework`` (version 1 was seeded by migration 0007, with no proposal)."""

    framework = models.ForeignKey(Framework, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    definition = models.JSONField()
    proposal = models.OneToOneField(
        Proposal,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="framework_version",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["framework", "version"], name="framework_version_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.framework_id} v{self.version}"


class ChangeQuerySet(models.QuerySet["Change"]):
    def approved_by_another(self) -> ChangeQuerySet:
        return self.filter(approved_by_another("proposal__"))

    def not_approved_by_another(self) -> ChangeQuerySet:
        """Changes that should not exist (the database refuses them): kept out of every
        release, and reported."""
        return self.exclude(approved_by_another("proposal__"))


class ChangeKind(models.TextChoices):
    CREATE = "create", "Created"
    REGRADE = "regrade", "Regraded"
    ADD_HASH = "add_hash", "Hash added"
    REMOVE_HASH = "remove_hash", "Hash removed"
    RETRACT = "retract", "Retracted"


class Change(models.Model):
    """The change log: one row per approved change to one entry, written in the approving
    transaction. The release cutter assigns ``release`` to every row that has none, under a
    lock, so a change that commits late is simply taken by the next release — never skipped
    and never released twice.

    ``before``/``after`` are the entry's distributable state (grading and hashes, never notes).
    """

    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="changes")
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="changes")
    kind = models.CharField(max_length=12, choices=ChangeKind.choices)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    approved_at = models.DateTimeField()
    release = models.PositiveBigIntegerField(null=True, blank=True)

    objects = ChangeQuerySet.as_manager()

    class Meta:
        indexes = [
            # Serves the release cutter's "every approved change not yet in a release".
            models.Index(
                fields=["id"], condition=Q(release__isnull=True), name="change_unreleased_idx"
            ),
            models.Index(fields=["release"], name="change_release_idx"),
            # Serves the changes-per-week report (index-only on PostgreSQL).
            models.Index(fields=["approved_at", "kind"], name="change_approved_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"Change {self.pk} ({self.kind} of entry {self.entry_id})"

    @property
    def state_before(self) -> EntryState | None:
        return EntryState.from_json(self.before)

    @property
    def state_after(self) -> EntryState | None:
        return EntryState.from_json(self.after)


class ImportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    JSONL = "jsonl", "JSON Lines"


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded, waiting for validation"
    VALIDATING = "validating", "Validating"
    INVALID = "invalid", "Invalid: see the errors; nothing was staged"
    FAILED = "failed", "Failed; nothing was staged or applied (see the message)"
    STAGED = "staged", "Valid and staged; waiting for review"
    APPLYING = "applying", "Approved; its rows are being applied"
    APPROVED = "approved", "Approved and applied"
    REJECTED = "rejected", "Rejected"


class ImportBatch(models.Model):
    """An uploaded bulk-import file and its validation. A valid file becomes one proposal of
    kind ``import`` that a second person approves or rejects as a unit."""

    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="import_batches"
    )
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    format = models.CharField(max_length=5, choices=ImportFormat.choices)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.UPLOADED
    )
    bytes_processed = models.PositiveBigIntegerField(default=0)
    rows_processed = models.PositiveBigIntegerField(default=0)
    rows_valid = models.PositiveBigIntegerField(default=0)
    # Approval's progress: rows applied so far by the apply task (hashlist.imports.apply), and
    # when the task last claimed the batch (the sweeper re-sends a claim older than its limit).
    rows_applied = models.PositiveBigIntegerField(default=0)
    apply_started_at = models.DateTimeField(null=True, blank=True)
    error_count = models.PositiveBigIntegerField(default=0)
    failure_message = models.TextField(blank=True, default="")
    comment = models.TextField(blank=True, default="")
    proposal = models.OneToOneField(
        Proposal, on_delete=models.PROTECT, null=True, blank=True, related_name="import_batch"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "import batches"
        constraints = [
            models.CheckConstraint(
                condition=_in("status", ImportStatus.values), name="import_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.original_name}, {self.status})"


class ImportRowError(models.Model):
    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="errors")
    line = models.PositiveBigIntegerField()
    message = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["batch", "line"], name="import_error_batch_line_idx")]

    def __str__(self) -> str:
        return f"Import {self.batch_id} line {self.line}"


class StagedRow(models.Model):
    """A validated row of an import batch, waiting for the batch's review. Written with bulk
    inserts; ``hashes`` is a JSON list of ``[algorithm, canonical value]`` pairs."""

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="staged_rows")
    line = models.PositiveBigIntegerField()
    category = models.CharField(max_length=1)
    age_group = models.CharField(max_length=8)
    baseline = models.BooleanField(null=True)
    industry_class = models.CharField(max_length=2, blank=True, default="")
    content_type = models.CharField(max_length=8)
    source = models.CharField(max_length=MAX_LABEL, blank=True, default="")
    notes = models.TextField(blank=True, default="")
    hashes = models.TextField()
    # The row's facts that are not grading fields (docs/import-format.md, "Facts").
    pubertal_stage = models.CharField(
        max_length=16, choices=_fact_choices("pubertal_stage"), default=UNKNOWN
    )
    activity = models.CharField(max_length=24, choices=_fact_choices("activity"), default=UNKNOWN)
    origin = models.CharField(max_length=20, choices=_fact_choices("origin"), default=UNKNOWN)
    self_generated = models.CharField(
        max_length=8, choices=_fact_choices("self_generated"), default=UNKNOWN
    )

    class Meta:
        indexes = [models.Index(fields=["batch", "line"], name="staged_row_batch_line_idx")]

    def __str__(self) -> str:
        return f"Staged row of import {self.batch_id}, line {self.line}"
