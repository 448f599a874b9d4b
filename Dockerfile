# syntax=docker/dockerfile:1
# agentd: build a virtualenv in one stage, run it as a non-root user in another.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore \
    UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install uv==0.13.8
WORKDIR /src
COPY pyproject.toml uv.lock ./
# The dependencies pinned in uv.lock, the same as `make install` without the
# dev extra, in a layer of their own; then the project, not editable.
RUN uv sync --locked --no-install-project
COPY README.md ./
COPY app ./app
RUN uv sync --locked --no-editable

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOG_FORMAT=json
RUN groupadd --system agentd && useradd --system --gid agentd --home-dir /srv/agentd agentd
WORKDIR /srv/agentd
COPY --from=build /opt/venv /opt/venv
COPY --chown=agentd:agentd app ./app
COPY --chown=agentd:agentd migrations ./migrations
COPY --chown=agentd:agentd alembic.ini ./
RUN mkdir -p data && chown agentd:agentd data
USER agentd
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["uvicorn", "app.main:app", "--loop", "app.serving:new_event_loop", "--host", "0.0.0.0", "--port", "8000", "--timeout-graceful-shutdown", "20", "--proxy-headers"]
