# syntax=docker/dockerfile:1
# The geospatial_pipeline code location: a Dagster gRPC server (default command) and the image
# of every run the K8sRunLauncher starts from it.
#
#   docker build -t <registry>/geospatial-pipeline:<tag> .
#
# Dependencies come from poetry.lock only, hash-checked; the final stage holds the virtualenv and
# nothing else (no Poetry, no pip cache, no compiler), and runs as UID 10001.

# Both stages use the same exact Python release (pinned tag; bump both together).
FROM python:3.11.13-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# Poetry only turns poetry.lock into a hash-pinned requirements file and builds the wheel.
RUN pip install --no-cache-dir "poetry==2.5.1" "poetry-plugin-export==1.10.1"

WORKDIR /src
COPY pyproject.toml poetry.lock ./
# The main group only: the test tools stay out of the image.
RUN poetry export --only main --format requirements.txt --output /tmp/requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps --require-hashes -r /tmp/requirements.txt

COPY README.md ./
COPY geospatial_pipeline ./geospatial_pipeline
# The project itself, from a wheel Poetry builds here (no build backend fetched at install time).
RUN poetry build --format wheel --output /tmp/dist \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps /tmp/dist/*.whl \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib \
 && /opt/venv/bin/python -c "import geospatial_pipeline.settings"
# The numba kernels compiled once, here, into the virtualenv: a run pod would otherwise compile them in
# each of its processes. For a generic x86-64 CPU, so the cache holds on whatever node runs it.
ENV NUMBA_CPU_NAME=generic
RUN mkdir /opt/venv/numba-cache \
 && NUMBA_CACHE_DIR=/opt/venv/numba-cache /opt/venv/bin/python -m geospatial_pipeline.core.kernels_warmup


FROM python:3.11.13-slim-bookworm AS runtime

# The root filesystem is read-only in the cluster; /tmp is the writable emptyDir there. numba only uses a
# cache folder it can write: the entrypoint copies the shipped kernels to NUMBA_CACHE_DIR once per pod.
# glibc keeps up to 1 GiB of freed heap for reuse and maps blocks of 64 MiB and more directly: each chunk
# allocates and frees the same few hundred MB, which would otherwise be handed back and faulted in again.
ENV PATH=/opt/venv/bin:$PATH \
    NUMBA_CPU_NAME=generic \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    MALLOC_TRIM_THRESHOLD_=1073741824 \
    MALLOC_MMAP_THRESHOLD_=67108864 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    DAGSTER_HOME=/opt/dagster/dagster_home

# UID/GID 10001 is the one terraform/modules/code-location and the run launcher run as. The code
# server's DAGSTER_HOME holds only "telemetry disabled" (nothing to write on a read-only disk); run
# pods get the instance's dagster.yaml mounted over it by the K8sRunLauncher.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app \
 && mkdir -p /opt/dagster/dagster_home /etc/dagster/config \
 && printf 'telemetry:\n  enabled: false\n' > /opt/dagster/dagster_home/dagster.yaml \
 && chown -R app:app /opt/dagster/dagster_home

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /opt/dagster/dagster_home
EXPOSE 3030

ENTRYPOINT ["/bin/sh", "-c", "cp -R /opt/venv/numba-cache/. \"$NUMBA_CACHE_DIR\" 2>/dev/null; exec \"$@\"", "--"]

HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
  CMD ["dagster", "api", "grpc-health-check", "-p", "3030"]

CMD ["dagster", "api", "grpc", "-m", "geospatial_pipeline.definitions", "-h", "0.0.0.0", "-p", "3030"]
