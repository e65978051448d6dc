/** The summary a person reads: coverage, counts, and each group of failures with one example. */

const count = (obj) =>
  Object.entries(obj)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${v}`)
    .join(' · ');

/** A command that sends the example again (with a key of your own in $KEY), when its body fits on a line. */
function curl(req) {
  if (req.raw) return `(raw HTTP: ${req.raw})`;
  const base = req.base === 'admin' ? '$KEYWAY_ADMIN_URL' : '$KEYWAY_URL';
  const auth = req.caller === 'none' ? '' : req.caller === 'operator' ? ' -H "authorization: Bearer $KEYWAY_ADMIN_TOKEN"' : ` -H "authorization: Bearer $KEY"  # ${req.caller}`;
  const parts = [`curl -X ${req.method} "${base}${req.url}"`];
  if (req.contentType) parts.push(`-H 'content-type: ${req.contentType}'`);
  if (req.requestId) parts.push(`-H 'x-request-id: ${req.requestId}'`);
  if (req.body !== undefined) {
    const summarised = req.body.includes('«') || req.body.endsWith('…');
    parts.push(summarised ? `--data-binary @body.json  # ${req.bodyBytes} bytes, summarised: ${req.body}` : `--data-binary '${req.body.replace(/'/g, "'\\''")}'`);
  }
  return parts.join(' ') + auth;
}

export function formatSummary(r) {
  const lines = [];
  const secs = (r.durationMs / 1000).toFixed(1);
  lines.push(`Keyway OpenAPI fuzz · seed ${r.seed} · ${r.baseUrl}`);
  lines.push(`document: OpenAPI ${r.document.openapi}; schemas read as ${r.document.dialect}${r.document.dialectDeclared ? '' : ' (OpenAPI 3.1 default: JSON Schema 2020-12)'}`);
  lines.push(`tenant ceiling: ${r.ceiling ? 'raised by the operator (rate_limit_ceiling)' : 'default (rate_limit_ceiling not accepted)'}`);
  const o = r.operations;
  lines.push(`operations: ${o.covered} of ${o.total} covered, ${o.with2xx} answered 2xx at least once${o.missing.length ? `; never sent: ${o.missing.join(', ')}` : ''}${o.without2xx.length ? `; never 2xx: ${o.without2xx.join(', ')}` : ''}`);
  lines.push(`requests: ${r.requests.sent} in ${secs} s · answers ${count(r.requests.byStatus)} · expected ${count(r.requests.byExpectation)}`);
  for (const n of r.notes) lines.push(`note: ${n}`);
  const f = r.failures;
  if (f.count === 0) {
    lines.push('failures: 0');
    return lines.join('\n');
  }
  const byKind = {};
  for (const g of f.groups) byKind[g.kind] = (byKind[g.kind] ?? 0) + g.count;
  lines.push(`failures: ${f.count} in ${f.groups.length} groups (operation × kind) · ${count(byKind)}`);
  lines.push(`reproduce the run: npm run fuzz -- --seed ${r.seed}`);
  for (const g of f.groups) {
    const e = g.example;
    lines.push('');
    lines.push(`✗ ${g.kind} · ${g.op} · ${g.count}× (${count(g.families)})`);
    lines.push(`    ${e.message}`);
    lines.push(`    request: ${curl(e.request)}`);
    if (e.note) lines.push(`    case: ${e.family}: ${e.note}`);
    if (e.request.classified) lines.push(`    the document says: ${e.request.classified}; expected ${e.expected}`);
    lines.push(`    answer: ${e.response.error ?? `${e.response.status} ${e.response.body}`}`);
  }
  return lines.join('\n');
}
