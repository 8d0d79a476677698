# syntax=docker/dockerfile:1
# The sts-guard image: the webhook (dist/server/main.js, HTTPS on 8443) and, with
# `args: ["dist/serverless/http.js"]`, the plain-HTTP variant for Knative. Build it in your pipeline:
#   docker build -t ghcr.io/example/sts-guard:0.1.0 .
# Runtime: distroless Node.js 20 (no shell, no package manager), user 65532 (nonroot), only the
# compiled dist/ and the production dependencies.
ARG NODE_MAJOR=20

# 1. Compile TypeScript with the dev dependencies.
FROM node:${NODE_MAJOR}-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run the build before the sources are here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. Production dependencies only, installed apart so no dev dependency reaches the image.
FROM node:${NODE_MAJOR}-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# 3. Runtime.
FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot AS runtime
WORKDIR /app
ENV NODE_ENV=production
# package.json carries "type": "module", which dist/ needs to load as ES modules.
COPY --from=prod-deps /app/package.json ./package.json
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER 65532:65532
EXPOSE 8443
# The image's entrypoint is node; the Deployment mounts the serving certificate and sets
# TLS_CERT_FILE/TLS_KEY_FILE (deploy/base/deployment.yaml).
CMD ["dist/server/main.js"]
