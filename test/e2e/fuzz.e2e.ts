import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '@keyway/testing';
import { startPlatform, type Platform } from './platform';

/**
 * Issue 8's OpenAPI-driven fuzz, short and seeded: the same `npm run fuzz` an operator runs on
 * demand (scripts/fuzz), as a child process against a platform of its own. It covers every
 * operation of the served document (valid calls, mutations, missing keys and scopes, other
 * tenants' ids) and issue 8's probes, then random sequences up to the budget. Any failure fails
 * the test with the fuzzer's summary, which names each request and answer.
 */
const SEED = 20261201;
const REQUESTS = 400;

interface FuzzResult {
  operations: { total: number; covered: number };
  requests: { sent: number };
  failures: { count: number };
  notes: string[];
}

function runFuzzer(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'scripts', 'fuzz', 'cli.mjs'), ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('OpenAPI fuzz, seeded', () => {
  let p: Platform;
  beforeAll(async () => {
    // The operator API's own per-address limit would turn the run's operator calls into 429s.
    p = await startPlatform('fuzz', { ADMIN_RATE_LIMIT_PER_MINUTE: '100000' });
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  it('meets every promise of the document on every operation', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-fuzz-'));
    try {
      const file = join(dir, 'result.json');
      const adminUrl = 'adminUrl' in p && typeof p.adminUrl === 'string' ? p.adminUrl : p.url;
      const { code, output } = await runFuzzer(['--url', p.url, '--admin-url', adminUrl, '--token', p.adminToken, '--seed', String(SEED), '--requests', String(REQUESTS), '--concurrency', '2', '--json', file]);
      if (code === 2) throw new Error(`the fuzzer could not run:\n${output}`);
      const result = JSON.parse(readFileSync(file, 'utf8')) as FuzzResult;
      expect(result.requests.sent).toBeGreaterThanOrEqual(REQUESTS);
      expect(result.operations.covered).toBe(result.operations.total);
      // A task of the fuzzer's own that crashed sent nothing more: coverage silently lost.
      expect(result.notes.filter((n) => / stopped: /.test(n))).toEqual([]);
      // The summary is the failure message, unescaped: every group with its request and answer.
      if (result.failures.count > 0) throw new Error(`the fuzzer found ${result.failures.count} failures:\n${output}`);
      expect(code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
