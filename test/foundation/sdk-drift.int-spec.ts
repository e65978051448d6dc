import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildOpenApiDocument } from '../../apps/gateway/src/openapi/document';

/** The generator (plain JS, so `npm run sdk:generate` needs no TypeScript): what this test uses of it. */
interface SdkTypes {
  sdkDrift(doc: unknown, read: (path: string) => string | undefined): Promise<string[]>;
}
// require: an .mjs without declarations (jest transforms it to CommonJS).
const { sdkDrift } = require('../../scripts/lib/sdk-types.mjs') as SdkTypes;

const ROOT = join(__dirname, '..', '..');
const read = (path: string): string | undefined => {
  try {
    return readFileSync(join(ROOT, path), 'utf8');
  } catch {
    return undefined;
  }
};

const drift = (doc: unknown): Promise<string[]> => sdkDrift(doc, read);

/**
 * The SDK's types are generated from the document the gateway serves at /docs/openapi.json, which
 * buildOpenApiDocument makes from the contracts' route table. A route, schema or error changed
 * without regenerating the SDK fails here, naming the command to run.
 */
describe('packages/sdk and the OpenAPI document', () => {
  it(`is what \`npm run sdk:generate\` makes of the gateway's document today`, async () => {
    expect(await drift(buildOpenApiDocument())).toEqual([]);
  });

  it('would fail, naming the command, when the API changed and the SDK was not regenerated', async () => {
    const doc = buildOpenApiDocument();
    doc.paths['/v1/added-later'] = { get: { operationId: 'added', responses: { '204': { description: 'Done' } } } };
    const found = await drift(doc);
    expect(found).toHaveLength(2);
    expect(found[0]).toBe("packages/sdk/openapi.json is out of date with the gateway's OpenAPI document: run `npm run sdk:generate` and commit the result");
    expect(found[1]).toContain('packages/sdk/src/generated/openapi.ts is out of date');
  });
});
