# Moderation Playground on a GPU, serving GPT-JT-Moderation-6B on port 7860.
#
#   docker build -t moderation-playground .
#   docker run --gpus all -p 7860:7860 -v moderation-data:/data moderation-playground
#
# The base is the official PyTorch runtime image whose torch is our pin (torch==2.13.0), built for
# CUDA 12.6 with cuDNN 9: it runs on hosts whose NVIDIA driver supports CUDA 12.x and covers the data
# center and workstation GPUs up to Hopper (A100, A10, L4, L40S, H100, H200, RTX 30/40). For Blackwell
# (sm_100/sm_120) use pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime (host driver 580 or newer).
FROM pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HOME=/data/huggingface \
    MODERATION_CACHE=/data/moderation-cache

# A user without privileges runs the app: app, uid and gid 1000, so a bind-mounted folder of a host's
# usual first user works too. Newer Ubuntu bases already have a uid-1000 user (ubuntu): it makes way.
# /data holds the Hugging Face cache, the demo model's cache, the database and the reviewers file; it is
# created owned by app before it becomes a volume, so a new named volume starts out owned by app.
RUN if getent passwd 1000 > /dev/null; then userdel --remove "$(getent passwd 1000 | cut -d: -f1)"; fi \
    && if getent group 1000 > /dev/null; then groupdel "$(getent group 1000 | cut -d: -f1)"; fi \
    && groupadd --gid 1000 app \
    && useradd --create-home --uid 1000 --gid 1000 --shell /bin/bash app \
    && mkdir -p /data/huggingface /data/moderation-cache \
    && chown -R 1000:1000 /data

WORKDIR /app

# The app's requirements, except torch: the image's torch is the CUDA build of the same version, and
# installing torch from requirements.txt could replace it. The check after the install fails the build
# if the image's torch is not the pinned version, or is not a CUDA build (anymore).
COPY requirements.txt ./
RUN grep -v '^torch==' requirements.txt > /tmp/requirements-image.txt \
    && python -m pip install --no-cache-dir -r /tmp/requirements-image.txt \
    && rm /tmp/requirements-image.txt \
    && pinned="$(sed -n 's/^torch==//p' requirements.txt)" \
    && python -c "import sys, torch; print('image torch', torch.__version__, 'CUDA', torch.version.cuda); \
sys.exit(torch.__version__.split('+')[0] != sys.argv[1] or torch.version.cuda is None)" "$pinned"

# Only what the app runs (root-owned, read-only for app).
COPY app.py ./
COPY moderation/ moderation/
COPY feedback/ feedback/
COPY playground/ playground/

# app (numeric, so that a runtime checking for a non-root user can tell without /etc/passwd).
USER 1000:1000

VOLUME ["/data"]
EXPOSE 7860

# /healthz answers once the model is loaded and the server listens. Loading a 6B model (downloading
# it into the volume, the first time) takes minutes, so failures in the first 10 minutes don't count.
# Python's urllib rather than curl, which the base image does not promise.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10m --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/healthz', timeout=8)"]

# Reviewers log in with the accounts in /data/reviewers.txt; add one with
#   docker run --rm -it -v moderation-data:/data --entrypoint python moderation-playground \
#     -m feedback reviewers add NAME --file /data/reviewers.txt
ENTRYPOINT ["python", "app.py"]
CMD ["--model", "togethercomputer/GPT-JT-Moderation-6B", "--host", "0.0.0.0", "--port", "7860", "--db", "/data/feedback.db", "--auth", "/data/reviewers.txt"]
