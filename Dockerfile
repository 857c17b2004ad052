# hashsync for operators who use containers: one image for the web nodes, the Celery workers and
# beat (compose.yaml starts each with its own command). Laid out like the systemd units
# (/opt/hashsync with its .venv, state under /var/lib/hashsync) so docs/operations.md applies.
# No container runtime runs where hashsync is developed: `make prod-check` (the same
# processes, without containers) is what is tested; this file and compose.yaml are not.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/hashsync/.venv/bin:$PATH \
    HASHSYNC_ENV=production \
    HASHSYNC_VAR_DIR=/var/lib/hashsync \
    HASHSYNC_MEDIA_ROOT=/var/lib/hashsync/media \
    STATIC_ROOT=/var/lib/hashsync/static \
    GUNICORN_BIND=0.0.0.0:8000

RUN useradd --system --uid 10001 --home-dir /opt/hashsync --shell /usr/sbin/nologin hashsync \
    && mkdir -p /var/lib/hashsync/media /var/lib/hashsync/static \
    && chown -R hashsync:hashsync /var/lib/hashsync

WORKDIR /opt/hashsync
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY client ./client
COPY . .
# Editable, like `make install`: settings find templates/ and static/ next to the packages.
RUN python -m venv .venv \
    && .venv/bin/pip install --no-cache-dir --upgrade pip \
    && .venv/bin/pip install --no-cache-dir -e ./client -e . \
    # collectstatic needs no secret or service: run it under the development settings.
    && HASHSYNC_ENV=development HASHSYNC_VAR_DIR=/tmp/collect .venv/bin/python manage.py \
       collectstatic --no-input --verbosity 0 \
    && rm -rf /tmp/collect \
    && chown -R hashsync:hashsync /var/lib/hashsync

USER hashsync
EXPOSE 8000
# The web node (deploy/systemd/hashsync-web.service); workers and beat override the command.
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "hashsync.wsgi"]
