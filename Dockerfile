# syntax=docker/dockerfile:1
# The sts-guard image: the webhook (dist/bundle/server.mjs, HTTPS on 8443), with
# `args: ["dist/bundle/http.mjs"]` the plain-HTTP variant for Knative, and with
# `args: ["dist/bundle/audit/main.mjs"]` the background audit (deploy/audit). Build it in your pipeline:
#   docker build -t ghcr.io/example/sts-guard:0.1.0 .
# Runtime: distroless Node.js 24 LTS on Debian 13 (no shell, no package manager), user 65532
# (nonroot), and only the esbuild bundle: it holds every production dependency, so the image has no
# node_modules/. Node.js 24 is supported until 2028-04-30; Node.js 20 reached end of life on 2026-04-30.
ARG NODE_MAJOR=24

# 1. Compile and bundle with the dev dependencies (TypeScript, esbuild).
FROM node:${NODE_MAJOR}-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run the build before the sources are here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# 2. Runtime.
FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian13:nonroot AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/dist/bundle ./dist/bundle
USER 65532:65532
EXPOSE 8443
# The image's entrypoint is node; the Deployment mounts the serving certificate and sets
# TLS_CERT_FILE/TLS_KEY_FILE (deploy/base/deployment.yaml).
CMD ["dist/bundle/server.mjs"]
