#!/usr/bin/env node
// Renders infra/nats/cluster.conf.tmpl, the one source of Keyway's NATS cluster configuration:
//   node scripts/nats-cluster.mjs          writes infra/nats/compose.conf and infra/k8s/nats.yaml
//   node scripts/nats-cluster.mjs --check  fails when either differs from what the template gives
//   node scripts/nats-cluster.mjs --node '<renderNode options as JSON>'  prints one node's config
// (the local 3-node test boots Debian's nats-server 2.9 from that, with `sync` off).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const TEMPLATE = join(ROOT, 'infra/nats/cluster.conf.tmpl');
const COMPOSE_OUT = join(ROOT, 'infra/nats/compose.conf');
const K8S_OUT = join(ROOT, 'infra/k8s/nats.yaml');

/** The production image: 2.11 or later, for `sync_interval: always`. */
export const NATS_IMAGE = 'nats:2.11-alpine';
export const REPLICAS = 3;

/**
 * One node's configuration.
 * @param {object} o
 * @param {string} o.serverName literal name, or `$VAR` (NATS reads it from the environment)
 * @param {string[]} o.routes nats-route:// URLs of every node
 * @param {boolean} o.sync `sync_interval: always` (NATS >= 2.11)
 * @param {boolean} o.auth include auth.conf (infra/nats/auth.conf, beside the rendered file)
 */
export function renderNode(o) {
  const vars = {
    server_name: o.serverName,
    host: o.host ?? '0.0.0.0',
    client_port: String(o.clientPort ?? 4222),
    cluster_port: String(o.clusterPort ?? 6222),
    monitor_port: String(o.monitorPort ?? 8222),
    store_dir: o.storeDir ?? '/data/jetstream',
    pid_file: o.pidFile ?? '/data/nats.pid',
    max_file_store: o.maxFileStore ?? '10GB',
    cluster_name: o.clusterName ?? 'keyway',
    routes: o.routes.map((r) => `    "${r}"`).join('\n'),
  };
  const flags = { sync: o.sync, auth: o.auth };
  const out = [];
  for (const line of readFileSync(TEMPLATE, 'utf8').split('\n')) {
    const m = /^(.*?)\s*#@ (\w+)$/.exec(line);
    if (m) {
      if (!(m[2] in flags)) throw new Error(`cluster.conf.tmpl: unknown flag ${m[2]}`);
      if (flags[m[2]]) out.push(m[1]);
      continue;
    }
    out.push(line);
  }
  return out.join('\n').replace(/\{\{(\w+)\}\}/g, (_, k) => {
    if (!(k in vars)) throw new Error(`cluster.conf.tmpl: unknown variable {{${k}}}`);
    return vars[k];
  });
}

const routes = (host) => Array.from({ length: REPLICAS }, (_, i) => `nats-route://${host(i)}:6222`);

/** docker compose, profile nats-cluster: nats-1..3, each told its name by SERVER_NAME. */
export const composeConf = () =>
  `# Rendered by scripts/nats-cluster.mjs from cluster.conf.tmpl: do not edit.\n` +
  renderNode({ serverName: '$SERVER_NAME', routes: routes((i) => `nats-${i + 1}`), sync: true, auth: true });

const indent = (text, n) => text.split('\n').map((l) => (l ? ' '.repeat(n) + l : l)).join('\n');

/** Kubernetes: a StatefulSet `nats` of 3 behind the headless Service `nats-cluster`; clients use Service `nats`. */
export function k8sYaml() {
  const conf = renderNode({
    serverName: '$POD_NAME',
    routes: routes((i) => `nats-${i}.nats-cluster`),
    sync: true,
    auth: true,
  });
  return `# Rendered by scripts/nats-cluster.mjs from infra/nats/cluster.conf.tmpl: do not edit.
# A 3-node JetStream cluster (NATS >= 2.11, sync_interval: always). Clients: nats://nats:4222.
# auth.conf comes from the ConfigMap keyway-nats-auth (nats-auth.yaml), the users' passwords from
# the Secret keyway-nats-passwords (NATS_PASSWORD_<USER>) into the server's environment.
apiVersion: v1
kind: ConfigMap
metadata:
  name: keyway-nats-cluster
  labels: { app.kubernetes.io/part-of: keyway, app.kubernetes.io/name: nats }
data:
  nats.conf: |
${indent(conf, 4)}
---
# Clients (the services' NATS_URL).
apiVersion: v1
kind: Service
metadata:
  name: nats
  labels: { app.kubernetes.io/part-of: keyway, app.kubernetes.io/name: nats }
spec:
  selector: { app.kubernetes.io/name: nats }
  ports:
    - { name: client, port: 4222, targetPort: client }
---
# Stable names for the routes: nats-<i>.nats-cluster.
apiVersion: v1
kind: Service
metadata:
  name: nats-cluster
  labels: { app.kubernetes.io/part-of: keyway, app.kubernetes.io/name: nats }
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: { app.kubernetes.io/name: nats }
  ports:
    - { name: cluster, port: 6222, targetPort: cluster }
    - { name: monitor, port: 8222, targetPort: monitor }
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: nats
  labels: { app.kubernetes.io/part-of: keyway, app.kubernetes.io/name: nats }
spec:
  serviceName: nats-cluster
  replicas: ${REPLICAS}
  # All at once at first boot: a JetStream cluster needs its peers to elect a meta leader.
  podManagementPolicy: Parallel
  updateStrategy: { type: RollingUpdate }
  selector:
    matchLabels: { app.kubernetes.io/name: nats }
  template:
    metadata:
      labels: { app.kubernetes.io/part-of: keyway, app.kubernetes.io/name: nats }
    spec:
      # Lame duck (30 s) plus its grace, and a margin.
      terminationGracePeriodSeconds: 60
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        runAsGroup: 1000
        fsGroup: 1000
        seccompProfile: { type: RuntimeDefault }
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: DoNotSchedule
          labelSelector:
            matchLabels: { app.kubernetes.io/name: nats }
      containers:
        - name: nats
          image: ${NATS_IMAGE}
          args: ["-c", "/etc/nats/nats.conf"]
          env:
            - name: POD_NAME
              valueFrom: { fieldRef: { fieldPath: metadata.name } }
          envFrom:
            - secretRef: { name: keyway-nats-passwords }
          ports:
            - { name: client, containerPort: 4222 }
            - { name: cluster, containerPort: 6222 }
            - { name: monitor, containerPort: 8222 }
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: { drop: [ALL] }
          startupProbe:
            httpGet: { path: /healthz, port: monitor }
            periodSeconds: 5
            failureThreshold: 60
          readinessProbe:
            httpGet: { path: "/healthz?js-enabled-only=true", port: monitor }
            periodSeconds: 10
          livenessProbe:
            httpGet: { path: "/healthz?js-enabled-only=true", port: monitor }
            periodSeconds: 30
            failureThreshold: 3
          lifecycle:
            # Lame duck: clients and stream leaders move to the other nodes before this one stops.
            preStop:
              exec: { command: ["nats-server", "--signal", "ldm=/data/nats.pid"] }
          resources:
            requests: { cpu: 250m, memory: 512Mi }
            limits: { memory: 1Gi }
          volumeMounts:
            - { name: config, mountPath: /etc/nats }
            - { name: data, mountPath: /data }
      volumes:
        - name: config
          projected:
            sources:
              - configMap: { name: keyway-nats-cluster }
              - configMap: { name: keyway-nats-auth }
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: [ReadWriteOnce]
        resources:
          requests: { storage: 20Gi }
`;
}

function main() {
  const node = process.argv.indexOf('--node');
  if (node > 0) {
    process.stdout.write(renderNode(JSON.parse(process.argv[node + 1] ?? '{}')));
    return;
  }
  const check = process.argv.includes('--check');
  const outputs = [
    [COMPOSE_OUT, composeConf()],
    [K8S_OUT, k8sYaml()],
  ];
  let stale = 0;
  for (const [file, text] of outputs) {
    if (check) {
      let current = '';
      try {
        current = readFileSync(file, 'utf8');
      } catch {
        /* missing counts as stale */
      }
      if (current !== text) {
        console.error(`${file} is not what infra/nats/cluster.conf.tmpl renders: run node scripts/nats-cluster.mjs`);
        stale++;
      }
    } else {
      writeFileSync(file, text);
      console.log(`wrote ${file}`);
    }
  }
  if (stale) process.exit(1);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
