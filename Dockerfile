# One image for every bunryu service; SERVICE picks which one runs.
#   docker build -t bunryu . && docker run -e SERVICE=gateway bunryu

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY core/package.json core/
COPY platform/package.json platform/
COPY event-log/package.json event-log/
COPY gateway/package.json gateway/
COPY experiment-service/package.json experiment-service/
COPY model-server/package.json model-server/
COPY aggregator/package.json aggregator/
COPY dashboard/package.json dashboard/
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 BUNRYU_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY --from=deps /app/package.json ./
COPY tsconfig.json ./
COPY core core
COPY platform platform
COPY event-log event-log
COPY gateway gateway
COPY experiment-service experiment-service
COPY model-server model-server
COPY aggregator aggregator
COPY dashboard dashboard
COPY scripts scripts
# The gateway ships as one bundle run by plain node (gateway/build.ts): smaller processes.
RUN node --import tsx gateway/build.ts && mkdir -p /data && chown node:node /data
USER node
VOLUME /data
ENV SERVICE=gateway
CMD ["sh", "-c", "if [ \"$SERVICE\" = gateway ]; then exec node gateway/dist/server.mjs; else exec node --import tsx \"$SERVICE/src/server.ts\"; fi"]
