# Transfer Lab in a container, after Streamlit's official Docker recipe
# (https://docs.streamlit.io/deploy/tutorials/docker).
#   docker build -t transfer-lab .
#   docker run -p 8501:8501 -v transferlab-data:/data transfer-lab
# The image runs on the CPU. Results, pretrained checkpoints and downloads live in /data
# (TRANSFERLAB_HOME); mount a volume there to keep them between containers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# curl serves the HEALTHCHECK below; nothing needs compiling (every requirement ships wheels).
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt requirements-text.txt ./
# torch and torchvision: from PyPI, pip would fetch the Linux wheels that bundle CUDA (gigabytes
# of libraries a CPU container never uses). So the exact versions pinned in requirements.txt are
# installed first as CPU-only builds from PyTorch's own wheel index (they are versioned
# 2.14.1+cpu and 0.29.1+cpu, which satisfy the `==` pins); installing requirements.txt from PyPI
# afterwards finds them already satisfied and adds everything else.
# (Equivalent in one step: pip install -r requirements.txt --extra-index-url <the index below>.)
RUN pip install --index-url https://download.pytorch.org/whl/cpu \
        "$(grep -E '^torch==' requirements.txt)" "$(grep -E '^torchvision==' requirements.txt)" \
    && pip install -r requirements.txt \
    && pip install --no-deps --require-hashes -r requirements-text.txt

COPY . .

# Run as an unprivileged user; the data directory is created and owned by it before it is
# declared a volume, so a fresh named volume inherits that ownership.
RUN useradd --create-home --uid 1000 app \
    && mkdir -p /data \
    && chown app:app /data
ENV TRANSFERLAB_HOME=/data
VOLUME /data
USER app

EXPOSE 8501

# The first start imports PyTorch and friends: give it a minute before a failure counts.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl --fail http://localhost:8501/_stcore/health

# serve.py is `streamlit run web.py` (app.py's pages behind the visitor cookie and security
# headers) with .streamlit/config.toml's settings (file watcher off,
# no Deploy button or developer menu), as `make run` starts it; it execs Streamlit, so
# `docker stop` signals the server itself. Extra flags go after the image name, e.g.
# `docker run ... transfer-lab --server.baseUrlPath=transferlab`.
ENTRYPOINT ["python", "serve.py", "--port=8501", "--address=0.0.0.0"]
