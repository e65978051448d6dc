# syntax=docker/dockerfile:1
# One image per app from the same file: docker build --build-arg APP=gateway -t keyway/gateway .
# Stages: prune the monorepo to the app and the workspace packages it uses (turbo prune), install
# and build that, drop dev dependencies, and copy only the result into a slim runtime image.
# The gateway image also carries the dashboard's static build, which it serves at /dashboard/.
# Images run on the active Node LTS; the code also runs on Node 20.19+ (package.json engines),
# which our development and CI machines use, so nothing here may need a newer Node than that.
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS base
ENV TURBO_TELEMETRY_DISABLED=1 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false
WORKDIR /repo

FROM base AS prune
ARG APP
RUN test -n "${APP}" || (echo "build with --build-arg APP=<gateway|identity|contacts|journeys|audit-log>" >&2; exit 1)
RUN npm install -g turbo@2.11.11
COPY . .
# out/json: package.json files and the pruned lockfile (cached install layer); out/full: sources.
# The gateway also takes the dashboard (apps/dashboard, a Vite app): dashboard.routes.ts serves its dist.
RUN if [ "${APP}" = gateway ]; then turbo prune @keyway/gateway @keyway/dashboard --docker; \
    else turbo prune "@keyway/${APP}" --docker; fi

FROM base AS build
ARG APP
COPY --from=prune /repo/out/json/ ./
# npm ci refuses a lockfile that lacks other platforms' optional binaries: fall back to an
# install from the same lockfile that does not rewrite it.
RUN npm ci || npm install --no-save
COPY --from=prune /repo/out/full/ ./
COPY .swcrc tsconfig.base.json tsconfig.json ./
RUN filters="--filter=@keyway/${APP}..." \
 && if [ "${APP}" = gateway ]; then filters="${filters} --filter=@keyway/dashboard..."; fi \
 && npx turbo run build ${filters} \
 && npm prune --omit=dev
# What the runtime image takes of the app: its folder, and for the gateway the dashboard's build
# where dashboard.routes.ts looks for it (apps/dashboard/dist, beside apps/gateway). A gateway
# image without it would answer /dashboard/ with 404: fail the build instead.
RUN mkdir -p /out/apps \
 && cp -a "apps/${APP}" /out/apps/ \
 && if [ "${APP}" = gateway ]; then \
      test -f apps/dashboard/dist/index.html \
      && mkdir -p /out/apps/dashboard && cp -a apps/dashboard/dist /out/apps/dashboard/dist; \
    fi

FROM ${NODE_IMAGE} AS runtime
ARG APP
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    KEYWAY_APP=${APP}
WORKDIR /app
COPY --from=build --chown=node:node /repo/package.json ./package.json
COPY --from=build --chown=node:node /repo/node_modules ./node_modules
COPY --from=build --chown=node:node /repo/packages ./packages
COPY --from=build --chown=node:node /out/apps ./apps
USER node
WORKDIR /app/apps/${APP}
# Services answer /health on HEALTH_PORT, the gateway on PORT; the probe asks whichever is set.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HEALTH_PORT||process.env.PORT||3000)+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM reaches node directly (no shell in between), so Nest drains NATS and closes cleanly.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
