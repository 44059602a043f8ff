# practice-bot container image. Deployment guide: docs/deploy.md.
#
#   docker build -t practice-bot .
#   docker run -d --name practice-bot --env-file .env -p 127.0.0.1:8080:8080 \
#     -v practice-bot-data:/app/data -v "$PWD/templates:/app/templates" practice-bot
#
# Configuration comes only from the environment (docker run --env-file / compose env_file):
# no .env file is ever copied into the image.

# ---- build: a virtual environment with the package and its runtime dependencies only ----
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml ./
COPY bot/ ./bot/
COPY adapters/ ./adapters/
# No test or dev extras: only what `practice-bot serve` needs.
# Babel ships CLDR data for 800 locales (35 MB); replies are written in English and Welsh
# only (bot/languages.py), so the image keeps those and the root they inherit from.
RUN pip install . \
    && find /opt/venv/lib/python3.11/site-packages/babel/locale-data -name '*.dat' \
       ! -name 'root.dat' ! -name 'en.dat' ! -name 'en_GB.dat' ! -name 'en_001.dat' \
       ! -name 'cy.dat' ! -name 'cy_*.dat' -delete \
    && cd / && python -c "import bot.cli, aiohttp._http_parser; from datetime import datetime; \
       from bot.languages import LANGUAGES as L; [l.date_and_time(datetime.now()) for l in L.values()]"

# ---- runtime: the venv, the default reply texts and nothing else ----
FROM python:3.11-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    TEMPLATES_DIR=/app/templates \
    DATABASE_URL=sqlite:////app/data/practice-bot.sqlite3

# A fixed uid/gid, so a bind-mounted data folder can be given to it: chown 10001:10001 data
RUN groupadd --system --gid 10001 practicebot \
    && useradd --system --uid 10001 --gid practicebot --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin practicebot

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# The shipped reply texts; mount the practice's own over them (-v ./templates:/app/templates,
# writable by uid 10001 for the manager's page) so the manager's edits survive upgrades. The
# service reloads them while it runs.
COPY templates/ /app/templates/
RUN python -c "import zoneinfo; zoneinfo.ZoneInfo('Europe/London')" \
    && mkdir -p /app/data \
    && chown practicebot:practicebot /app/data \
    && chmod 0700 /app/data

USER 10001:10001
VOLUME ["/app/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM

# slim images have no curl: ask /healthz with the standard library, on the configured PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + (os.environ.get('PORT') or '8080') + '/healthz', timeout=4)"]

ENTRYPOINT ["practice-bot"]
CMD ["serve"]
