# syntax=docker/dockerfile:1
# One image for every process: `agentauth serve registry|verifier|worker` and `agentauth migrate`.

FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/agentauth
COPY pyproject.toml README.md ./
COPY migrations ./migrations
COPY app ./app
RUN /opt/agentauth/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/agentauth/bin/pip install --no-cache-dir '.[server]'

FROM python:3.11-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="AgentAuth" \
      org.opencontainers.image.description="Authorization server for AI agents: passkey-approved, DPoP-bound delegation tokens" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin agentauth
# No compilers or build tools here: only the virtual environment built above.
COPY --from=build /opt/agentauth /opt/agentauth
ENV PATH=/opt/agentauth/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AGENTAUTH_HEALTH_URL=http://127.0.0.1:8080/healthz
USER 10001
WORKDIR /tmp
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['AGENTAUTH_HEALTH_URL'], timeout=2)"]
ENTRYPOINT ["agentauth"]
CMD ["serve", "registry", "--host", "0.0.0.0", "--port", "8080"]
