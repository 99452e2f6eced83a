/** A self-contained HTML rendering of the OpenAPI document: no script, no CDN. */
export function docsPage(doc: Record<string, unknown>): string {
  const info = doc.info as { title: string; version: string; description?: string };
  const paths = doc.paths as Record<string, Record<string, Operation>>;
  const schemas = (doc.components as { schemas: Record<string, unknown> }).schemas;
  const rows: string[] = [];
  for (const [path, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const body = op.requestBody?.content['application/json']?.schema?.$ref;
      const responses = Object.entries(op.responses)
        .map(([status, r]) => {
          const schema = Object.values(r.content ?? {})[0]?.schema?.$ref;
          return `<li><b>${esc(status)}</b> ${esc(r.description)}${schema ? ` → ${link(schema)}` : ''}</li>`;
        })
        .join('');
      rows.push(
        `<section id="${esc(method + path)}"><h3><code>${esc(method.toUpperCase())} ${esc(path)}</code> <small>${esc(op['x-bunryu-role'] ?? 'public')}</small></h3>` +
          `<p>${esc(op.summary)}</p>${body ? `<p>Body: ${link(body)}</p>` : ''}<ul>${responses}</ul></section>`,
      );
    }
  }
  const components = Object.entries(schemas)
    .map(([name, schema]) => `<section id="schema-${esc(name)}"><h3>${esc(name)}</h3><pre>${esc(JSON.stringify(schema, null, 2))}</pre></section>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(info.title)} API</title>
<style>body{font:14px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}h3{margin:1.5rem 0 .3rem}small{color:#666;font-weight:normal}pre{background:#f5f5f5;padding:.6rem;overflow:auto;font-size:12px}section{border-top:1px solid #eee}</style>
</head><body><h1>${esc(info.title)} <small>${esc(info.version)}</small></h1>
<p>${esc(info.description ?? '')} Machine-readable: <a href="/openapi.json">/openapi.json</a>. Send <code>Authorization: Bearer &lt;token&gt;</code>; roles viewer &lt; editor &lt; reviewer &lt; releaser &lt; admin.</p>
<h2>Endpoints</h2>${rows.join('\n')}
<h2>Schemas</h2>${components}
</body></html>`;
}

interface Operation {
  summary: string;
  'x-bunryu-role'?: string;
  requestBody?: { content: Record<string, { schema?: { $ref?: string } }> };
  responses: Record<string, { description: string; content?: Record<string, { schema?: { $ref?: string } }> }>;
}

function link(ref: string): string {
  const name = ref.split('/').pop() ?? ref;
  return `<a href="#schema-${esc(name)}">${esc(name)}</a>`;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
