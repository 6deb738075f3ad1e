# One image for every Work-It service (web, worker, scheduler, mailcatcher).
# It installs requirements.lock only, what the app runs on: no pytest, ruff or
# playwright (those are in requirements-dev.lock, for make install).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN pip install --no-cache-dir --no-deps -e .
RUN useradd --create-home workit && mkdir -p var && chown workit var
USER workit
EXPOSE 5000 1025 1080
# The web service's command in docker-compose.yml (which says why these settings).
CMD ["gunicorn", "--config", "python:app.ops.gunicorn_conf", "--bind", "0.0.0.0:5000", "--worker-class", "gthread", "--workers", "2", "--threads", "8", "app:create_app()"]
