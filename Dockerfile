# Lockgate operator image: built in a throwaway stage, run from a slim Python base as a non-root
# user, without pip, compilers or build tools.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY crds ./crds
RUN python -m venv /opt/lockgate \
 && /opt/lockgate/bin/pip install --upgrade pip \
 && /opt/lockgate/bin/pip install . \
 && /opt/lockgate/bin/pip uninstall --yes pip setuptools wheel \
 && find /opt/lockgate -name '__pycache__' -prune -exec rm -rf {} +

FROM python:${PYTHON_VERSION}-slim
# No pip, no setuptools, no package manager caches in the final image.
RUN python -m pip uninstall --yes pip setuptools wheel 2>/dev/null; \
    rm -rf /var/lib/apt/lists/* /root/.cache \
 && groupadd --gid 65532 lockgate \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin lockgate \
 && mkdir -p /var/lib/lockgate && chown 65532:65532 /var/lib/lockgate
COPY --from=build /opt/lockgate /opt/lockgate
ENV PATH=/opt/lockgate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOCKGATE_LOG_FORMAT=json
USER 65532:65532
WORKDIR /var/lib/lockgate
EXPOSE 9443 9090 8081
ENTRYPOINT ["lockgate"]
CMD ["run"]
