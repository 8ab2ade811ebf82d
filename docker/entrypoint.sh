#!/bin/sh
# Starts one process of the image: `web`, `worker` or `beat`; anything else runs as given
# (`docker compose run --rm web python manage.py createsuperuser`).
set -eu

case "${1:-web}" in
web)
    # The web service brings the database up to date before it serves (migrate is a no-op
    # when nothing changed; with several web replicas, run it once as a release step
    # instead). collectstatic again picks up static files of a bind-mounted checkout; on
    # the built image it finds nothing new.
    python manage.py migrate --noinput
    python manage.py collectstatic --noinput --verbosity 0
    exec gunicorn outreach.wsgi \
        --bind 0.0.0.0:8000 \
        --workers "${WEB_CONCURRENCY:-3}" \
        --timeout "${GUNICORN_TIMEOUT:-60}" \
        --access-logfile - \
        --error-logfile -
    ;;
worker)
    exec celery -A outreach worker -l "${CELERY_LOG_LEVEL:-info}"
    ;;
beat)
    # The schedule's state (when each job last ran) lives in a volume, so a restarted beat
    # neither repeats nor forgets a job.
    exec celery -A outreach beat -l "${CELERY_LOG_LEVEL:-info}" \
        --schedule "${CELERY_BEAT_SCHEDULE_FILE:-/app/var/beat/celerybeat-schedule}"
    ;;
*)
    exec "$@"
    ;;
esac
