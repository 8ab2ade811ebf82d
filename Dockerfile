# The production image: one image for the web process (gunicorn), the Celery worker and
# celery beat; docker/entrypoint.sh picks the process (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# A system user without a shell or a password: the processes never run as root.
RUN groupadd --system outreach \
    && useradd --system --gid outreach --home-dir /app --shell /usr/sbin/nologin outreach

# Dependencies first, so that a change in the code alone reuses this layer. Every runtime
# dependency ships as a wheel (psycopg[binary] included): no compiler in the image.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Translation catalogues, compiled with Babel (no GNU gettext in the image), and the static
# files, gathered and compressed by whitenoise's manifest storage (settings choose it when
# DEBUG is off). collectstatic needs a SECRET_KEY to import the settings; this one exists
# only during the build and signs nothing.
RUN python -m babel.messages.frontend compile -d locale -D django \
    && DEBUG=0 SECRET_KEY=build-time-only-collectstatic python manage.py collectstatic --noinput \
    && mkdir -p /app/var/beat /app/media \
    && chown -R outreach:outreach /app/staticfiles /app/var /app/media \
    && chmod +x /app/docker/entrypoint.sh

USER outreach

EXPOSE 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
