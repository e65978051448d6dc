import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** openssl (OPENSSL_BIN to use another): Debian installs it with the base system. */
const OPENSSL = process.env.OPENSSL_BIN ?? 'openssl';

export interface TestCertificates {
  dir: string;
  /** The throwaway CA a client verifies the server with (NATS_TLS_CA). */
  ca: string;
  /** The server's certificate (for 127.0.0.1 and localhost) and key. */
  cert: string;
  key: string;
  remove(): void;
}

/** A throwaway CA and a server certificate it signed, valid for a day, in a directory of their own. */
export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-tls-'));
  const ssl = (...args: string[]) => execFileSync(OPENSSL, args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=keyway-test-ca', '-keyout', 'ca.key', '-out', 'ca.pem');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  // Node checks the name it dialled against the SAN; the client may dial either.
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-out', 'server.pem', '-extfile', 'san.ext');
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    cert: join(dir, 'server.pem'),
    key: join(dir, 'server.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
