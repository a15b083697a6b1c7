# One image for every Procfile process type; docker-compose.yml picks the process with `command:`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --create-home --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies before the code, so this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# The code stays owned by root: the app user reads it and cannot rewrite it.
COPY . .

# Numeric, so orchestrators that enforce "run as non-root" can verify it.
USER 10001:10001

EXPOSE 8000

# The Procfile's web line. Shell form so ${PORT:-8000} and friends expand when the container starts;
# `exec` makes gunicorn the process that receives SIGTERM (graceful shutdown), not the shell.
CMD exec gunicorn "api:create_app()" --config python:config.gunicorn --bind 0.0.0.0:${PORT:-8000} --worker-class gthread --workers ${WEB_CONCURRENCY:-2} --threads ${WEB_THREADS:-32} --graceful-timeout 25
