# One image for every Work-It service (web, worker, scheduler, mailcatcher).
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
CMD ["flask", "--app", "app", "run", "--host", "0.0.0.0", "--port", "5000"]
