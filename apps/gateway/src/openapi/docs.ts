import fastifySwagger, { type StaticDocumentSpec } from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { buildOpenApiDocument, type OpenApiDocument } from './document';

const DOCS_PREFIX = '/docs';
const OPENAPI_JSON_PATH = `${DOCS_PREFIX}/openapi.json`;

let cached: OpenApiDocument | undefined;
/** Built once: the route table does not change while the process runs. */
function openApiDocument(): OpenApiDocument {
  cached ??= buildOpenApiDocument();
  return cached;
}

/**
 * Serves the document at `/docs/openapi.json` and Swagger UI at `/docs`, every asset from
 * node_modules (`@fastify/swagger-ui` ships swagger-ui-dist's files and sets no validator URL), so
 * the page works on machines without internet access. `@fastify/swagger` runs in static mode: the
 * document is ours, not collected from Fastify's route schemas (the gateway validates with zod).
 *
 * Takes the raw Fastify instance (`app.getHttpAdapter().getInstance()` under Nest), to be called
 * before the app starts listening. The routes need no API key: the auth hook must let `/docs` pass.
 */
export function registerDocs(fastify: FastifyInstance): void {
  const document = openApiDocument();
  fastify.get(OPENAPI_JSON_PATH, async (_request, reply) => reply.header('cache-control', 'no-cache').send(document));
  // Both register() calls are queued by Fastify and loaded by ready()/listen(), which await them.
  void fastify.register(fastifySwagger, {
    mode: 'static',
    // Its types stop at OpenAPI 3.0; in static mode it serves the 3.1 document as given.
    specification: { document: document as unknown as StaticDocumentSpec['document'] },
  });
  void fastify.register(fastifySwaggerUi, {
    routePrefix: DOCS_PREFIX,
    staticCSP: true,
    uiConfig: { deepLinking: true, displayOperationId: true, defaultModelsExpandDepth: 0, persistAuthorization: false },
  });
}
