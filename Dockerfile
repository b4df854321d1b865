# syntax=docker/dockerfile:1
# Build:  docker build -t billing-portal .
# Run:    docker run -p 8000:8000 -v billing-data:/data billing-portal
# With no DATABASE_URL it keeps a SQLite file and its signing key in /data; a real deployment
# sets DATABASE_URL (postgresql+asyncpg://...), BILLING_ENV=production and BILLING_JWT_SECRET.

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# Dependencies first, exactly as locked (versions and hashes: python3 dev.py lock), so that a
# code change reuses this layer and every build installs the same files.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY app ./app
COPY alembic.ini ./
COPY migrations ./migrations
# Editable, so the code stays in /app beside alembic.ini and migrations/, where the CLI looks.
# No dependencies here: they came from the lock; pip check fails the build if it lacks one.
RUN pip install --no-deps -e . && pip check && python -m compileall -q app migrations

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    BILLING_DATA_DIR=/data \
    BILLING_WORKERS=2
RUN groupadd --system --gid 10001 billing \
 && useradd --system --uid 10001 --gid billing --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin billing \
 && mkdir /data && chown billing:billing /data
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app
USER billing
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Shell form so ${BILLING_WORKERS} is expanded; exec makes the server PID 1, receiving signals.
CMD exec billing-portal serve --host 0.0.0.0 --port 8000 --workers "${BILLING_WORKERS:-2}"
