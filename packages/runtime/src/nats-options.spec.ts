import { BaseEnv, loadConfig } from './config';
import { natsConnectionOptions } from './nats-options';

describe('natsConnectionOptions: the one place NATS credentials come from', () => {
  const base = { NATS_URL: 'nats://a:4222, nats://b:4222' };

  it('connects as before with nothing set (the development and CI servers have no users)', () => {
    const opts = natsConnectionOptions(loadConfig(BaseEnv, base), 'svc');
    expect(opts).toEqual({ servers: ['nats://a:4222', 'nats://b:4222'], name: 'svc' });
  });

  it('connects as the user, with an inbox only that user may read', () => {
    const opts = natsConnectionOptions(loadConfig(BaseEnv, { ...base, NATS_USER: 'contacts', NATS_PASSWORD: 's3cret' }), 'svc');
    expect(opts).toMatchObject({ user: 'contacts', pass: 's3cret', inboxPrefix: '_INBOX.contacts' });
  });

  it('turns TLS on with a CA, and presents a client certificate with its key', () => {
    expect(natsConnectionOptions(loadConfig(BaseEnv, { ...base, NATS_TLS_CA: '/ca.pem' }), 's').tls).toEqual({ caFile: '/ca.pem' });
    expect(natsConnectionOptions(loadConfig(BaseEnv, { ...base, NATS_TLS_CERT: '/c.pem', NATS_TLS_KEY: '/k.pem' }), 's').tls).toEqual({ certFile: '/c.pem', keyFile: '/k.pem' });
  });

  it('refuses half a credential at boot, naming the variable', () => {
    expect(() => loadConfig(BaseEnv, { ...base, NATS_PASSWORD: 'x' })).toThrow(/NATS_USER/);
    expect(() => loadConfig(BaseEnv, { ...base, NATS_USER: 'contacts' })).toThrow(/NATS_PASSWORD/);
    expect(() => loadConfig(BaseEnv, { ...base, NATS_TLS_CERT: '/c.pem' })).toThrow(/NATS_TLS_KEY/);
    // Empty is unset, as for every variable: no user, no error.
    expect(() => loadConfig(BaseEnv, { ...base, NATS_USER: '', NATS_PASSWORD: '' })).not.toThrow();
  });
});
