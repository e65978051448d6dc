import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * infra/k8s as the cluster would get it: `kubectl kustomize` renders it, and `kubectl label
 * --local -o json` (no cluster needed) turns each object into JSON, so the invariants a rollout
 * relies on are checked on what is applied, not on the files. KEYWAY_K8S_DIR points it elsewhere.
 */
const ROOT = join(__dirname, '..', '..');
const DIR = process.env.KEYWAY_K8S_DIR ?? join(ROOT, 'infra', 'k8s');
const APPS = ['gateway', 'identity', 'contacts', 'journeys', 'audit-log'] as const;
const SCALED = ['gateway', 'contacts', 'journeys'] as const;

/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes objects, checked field by field */
type K8s = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any; data?: any; stringData?: any };

/** The binary; KUBECTL points elsewhere (a system tool, not an npm dependency). */
const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const kubectl = (args: string[], input?: string) => spawnSync(KUBECTL, args, { encoding: 'utf8', input, timeout: 30_000, maxBuffer: 32 * 1024 * 1024 });

/** kubectl prints one pretty JSON object after another: split them at the top-level braces. */
function toObjects(yamlText: string): K8s[] {
  const r = kubectl(['label', '--local', '-f', '-', '-o', 'json', 'keyway.io/rendered=1'], yamlText);
  if (r.status !== 0) throw new Error(`kubectl label --local: ${r.stderr}`);
  return r.stdout
    .split(/\n(?=\{\n)/)
    .filter((s) => s.trim())
    .map((s) => JSON.parse(s) as K8s);
}

const kubectlMissing = kubectl(['version', '--client']).status !== 0;
const describeK8s = kubectlMissing ? describe.skip : describe;
if (kubectlMissing) console.warn('SKIPPED infra/k8s checks: kubectl is not installed');

describeK8s('infra/k8s (kubectl kustomize)', () => {
  let objects: K8s[];
  const all = (kind: string) => objects.filter((o) => o.kind === kind);
  const one = (kind: string, name: string): K8s => {
    const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
    if (!found) throw new Error(`no ${kind}/${name}`);
    return found;
  };
  const container = (app: string): any => one('Deployment', app).spec.template.spec.containers[0];
  const env = (app: string, name: string): any => (container(app).env ?? []).find((e: any) => e.name === name);

  beforeAll(() => {
    const r = kubectl(['kustomize', DIR]);
    if (r.status !== 0) throw new Error(`kubectl kustomize ${DIR}: ${r.stderr}`);
    objects = toObjects(r.stdout);
  });

  it('lands in one namespace that enforces Pod Security "restricted"', () => {
    const ns = one('Namespace', 'keyway');
    expect(ns.metadata.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted' });
    for (const o of objects.filter((x) => x.kind !== 'Namespace')) expect([o.kind, o.metadata.name, o.metadata.namespace]).toEqual([o.kind, o.metadata.name, 'keyway']);
  });

  it('has a Deployment per app, each with the restricted security context, every probe and resources', () => {
    expect(all('Deployment').map((d) => d.metadata.name).sort()).toEqual([...APPS].sort());
    for (const d of all('Deployment')) {
      const name = d.metadata.name;
      const pod = d.spec.template.spec;
      expect([name, pod.securityContext]).toEqual([name, expect.objectContaining({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })]);
      expect([name, pod.automountServiceAccountToken]).toEqual([name, false]);
      expect([name, pod.topologySpreadConstraints?.map((t: any) => t.topologyKey).sort()]).toEqual([name, ['kubernetes.io/hostname', 'topology.kubernetes.io/zone']]);
      for (const t of pod.topologySpreadConstraints) expect(t.labelSelector.matchLabels).toEqual(d.spec.selector.matchLabels);
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        expect([name, c.securityContext]).toEqual([
          name,
          expect.objectContaining({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } }),
        ]);
        expect([name, c.resources?.requests?.cpu, c.resources?.requests?.memory, c.resources?.limits?.memory].every((v) => v !== undefined)).toBe(true);
        // Every probe asks a port the container declares.
        const ports = new Set((c.ports ?? []).map((p: any) => p.name));
        for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
          expect([name, probe, c[probe]?.httpGet?.path]).toEqual([name, probe, probe === 'readinessProbe' ? '/health/ready' : '/health/live']);
          expect([name, probe, ports.has(c[probe].httpGet.port)]).toEqual([name, probe, true]);
        }
        // A read-only root filesystem: /tmp is a volume.
        expect([name, (c.volumeMounts ?? []).some((m: any) => m.mountPath === '/tmp')]).toEqual([name, true]);
      }
    }
  });

  it('has no pod the restricted namespace would refuse (NATS included)', () => {
    const workloads = objects.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind));
    expect(workloads.length).toBeGreaterThan(APPS.length - 1);
    for (const w of workloads) {
      const pod = w.spec.template.spec;
      const name = `${w.kind}/${w.metadata.name}`;
      expect([name, pod.securityContext?.runAsNonRoot, pod.securityContext?.seccompProfile?.type]).toEqual([name, true, 'RuntimeDefault']);
      expect([name, pod.hostNetwork ?? false, pod.hostPID ?? false, (pod.volumes ?? []).some((v: any) => v.hostPath)]).toEqual([name, false, false, false]);
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        expect([name, c.securityContext?.allowPrivilegeEscalation, c.securityContext?.capabilities?.drop]).toEqual([name, false, ['ALL']]);
      }
    }
  });

  it('gives a long migration time to finish (startup probe) and each SIGTERM its grace', () => {
    const config = one('ConfigMap', 'keyway-config').data as Record<string, string>;
    for (const app of APPS) {
      const c = container(app);
      const startupBudget = c.startupProbe.periodSeconds * c.startupProbe.failureThreshold;
      expect([app, startupBudget >= (app === 'gateway' ? 30 : 300)]).toEqual([app, true]);
      const graceMs = Number(env(app, 'SHUTDOWN_GRACE_MS')?.value ?? config.SHUTDOWN_GRACE_MS);
      expect([app, Number.isFinite(graceMs)]).toEqual([app, true]);
      const preStopMs = (c.lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000;
      // preStop, then the requests in flight, then the NATS drain (2 s at most), with room to spare.
      const tgps = one('Deployment', app).spec.template.spec.terminationGracePeriodSeconds * 1000;
      expect([app, tgps >= preStopMs + graceMs + 2_000 + 5_000]).toEqual([app, true]);
    }
    // The gateway keeps answering while the endpoints catch up with its deletion.
    expect(container('gateway').lifecycle.preStop.sleep.seconds).toBeGreaterThanOrEqual(5);
  });

  it('serves the public API and the admin listener on separate Services', () => {
    const ports = Object.fromEntries(container('gateway').ports.map((p: any) => [p.name, p.containerPort]));
    expect(ports).toEqual({ http: 3000, admin: 3100 });
    expect(env('gateway', 'ADMIN_PORT').value).toBe('3100');
    expect(env('gateway', 'PORT').value).toBe('3000');
    expect(one('Service', 'gateway').spec.ports.map((p: any) => p.targetPort)).toEqual(['http']);
    expect(one('Service', 'gateway-admin').spec.ports.map((p: any) => p.targetPort)).toEqual(['admin']);
    expect(one('Service', 'gateway-admin').spec.type ?? 'ClusterIP').toBe('ClusterIP');
    // Only the gateway holds the operator token.
    for (const app of APPS) expect([app, env(app, 'KEYWAY_ADMIN_TOKEN') !== undefined]).toEqual([app, app === 'gateway']);
  });

  it('has a PodDisruptionBudget and an HPA for the gateway, contacts and journeys, which owns their replica count', () => {
    for (const app of SCALED) {
      const pdb = one('PodDisruptionBudget', app);
      expect(pdb.spec.selector.matchLabels).toEqual(one('Deployment', app).spec.selector.matchLabels);
      const hpa = one('HorizontalPodAutoscaler', app);
      expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: app });
      expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
      // A PDB allowing no disruption would block every node drain.
      expect(pdb.spec.maxUnavailable ?? 1).toBeGreaterThanOrEqual(1);
      expect([app, one('Deployment', app).spec.replicas]).toEqual([app, undefined]);
    }
  });

  it('runs audit-log as a writer and a standby (the writer lease), with a PodDisruptionBudget that lets one go at a time', () => {
    expect(one('Deployment', 'audit-log').spec.replicas).toBe(2);
    expect(one('Deployment', 'audit-log').spec.strategy.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: 1 });
    const pdb = one('PodDisruptionBudget', 'audit-log');
    expect(pdb.spec).toMatchObject({ maxUnavailable: 1, selector: { matchLabels: { 'app.kubernetes.io/name': 'audit-log' } } });
    // The lease is on unless turned off.
    expect(env('audit-log', 'AUDIT_WRITER_LEASE')?.value ?? 'on').toBe('on');
  });

  it('fences every app with a NetworkPolicy: the gateway takes ingress, the services reach only NATS, Postgres and DNS', () => {
    const policyFor = (app: string) => {
      const matching = all('NetworkPolicy').filter((p) => p.spec.podSelector.matchLabels?.['app.kubernetes.io/name'] === app);
      expect([app, matching.length]).toEqual([app, 1]);
      const p = matching[0]!;
      expect([app, [...p.spec.policyTypes].sort()]).toEqual([app, ['Egress', 'Ingress']]);
      return p.spec;
    };
    const egressPorts = (spec: any) => new Set<number>(spec.egress.flatMap((r: any) => (r.ports ?? [{ port: 'ANY' }]).map((p: any) => p.port)));
    const gw = policyFor('gateway');
    const publicRule = gw.ingress.find((r: any) => r.ports.some((p: any) => p.port === 3000));
    expect(publicRule.from).toBeUndefined(); // from anywhere
    const adminRule = gw.ingress.find((r: any) => r.ports.some((p: any) => p.port === 3100));
    expect(adminRule.from.length).toBeGreaterThan(0);
    expect(adminRule.ports.map((p: any) => p.port)).toEqual([3100]);
    expect([...egressPorts(gw)].sort()).toEqual([4222, 53, 6379].sort());
    for (const app of APPS.filter((a) => a !== 'gateway')) {
      const spec = policyFor(app);
      expect([app, [...egressPorts(spec)].sort()]).toEqual([app, [4222, 5432, 53].sort()]);
      // Nothing comes in but the scrape of the health port.
      for (const r of spec.ingress) {
        expect([app, r.from?.length > 0, r.ports.map((p: any) => p.port)]).toEqual([app, true, [8081]]);
      }
    }
  });

  it('references only Secret keys that the example Secrets define, and includes the NATS manifests that exist', () => {
    const examples = toObjects(readFileSync(join(DIR, 'secret.example.yaml'), 'utf8'));
    const keys = new Set(examples.flatMap((s) => Object.keys(s.stringData ?? {}).map((k) => `${s.metadata.name}/${k}`)));
    for (const app of APPS) {
      for (const e of container(app).env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref) expect([app, keys.has(`${ref.name}/${ref.key}`)]).toEqual([app, true]);
      }
    }
    const kustomization = readFileSync(join(DIR, 'kustomization.yaml'), 'utf8');
    for (const file of ['nats.yaml', 'nats-auth.yaml']) {
      if (existsSync(join(DIR, file))) expect(kustomization).toMatch(new RegExp(`^\\s*- ${file.replace('.', '\\.')}\\s*$`, 'm'));
    }
  });
});
